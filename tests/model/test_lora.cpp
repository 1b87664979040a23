// LoRA adapters (c3/model/lora.h): a new adapter changes nothing, merging changes nothing either,
// and the adapter round-trips through its PEFT files. (Parity with PEFT itself:
// tests/hf/test_lora.py; training with adapters: tests/train/test_frozen_backward.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "c3/model/lora.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

Qwen2ForCausalLM tiny_model(uint64_t seed) {
  Qwen2ForCausalLM model(test::tiny_config());
  model->init_weights(seed);
  model->eval();
  return model;
}

at::Tensor logits_of(Qwen2ForCausalLM& model) {
  torch::NoGradGuard no_grad;
  return model->forward(at::arange(1, 13, at::kLong).view({2, 6}));
}

LoraConfig config_of(std::vector<std::string> targets, int64_t rank = 4, double alpha = 8) {
  return LoraConfig{rank, alpha, 0.0, resolve_lora_targets(targets, "test")};
}

// Gives every B random values, as training would.
void train_adapters(Qwen2ForCausalLM& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters())
    if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0, 0.05);
}

TEST(Lora, ANewAdapterChangesNothingAndIsDrawnAsPeftDrawsIt) {
  auto model = tiny_model(1);
  const at::Tensor before = logits_of(model);
  const size_t plain = model->named_parameters().size();
  add_lora(*model, config_of({"q_proj", "down_proj"}), 7);
  EXPECT_TRUE(logits_of(model).equal(before));
  const int64_t layers = test::tiny_config().num_hidden_layers;
  EXPECT_EQ(model->named_parameters().size(), plain + 4 * static_cast<size_t>(layers));
  auto& attention = *model->model->layers[0]->as<Qwen2DecoderLayerImpl>()->self_attn;
  const auto& q = *attention.q_proj;
  const double bound = 1.0 / std::sqrt(static_cast<double>(q.weight.size(1)));
  EXPECT_LE(q.lora_A->weight.abs().max().item<double>(), bound);
  EXPECT_GT(q.lora_A->weight.abs().max().item<double>(), 0.8 * bound);
  EXPECT_EQ(q.lora_B->weight.abs().max().item<double>(), 0);
  EXPECT_EQ(attention.k_proj->lora_A, nullptr);
  const auto read = lora_config_of(*model);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->targets, (std::vector<std::string>{"down_proj", "q_proj"}));
  EXPECT_EQ(read->rank, 4);
  EXPECT_DOUBLE_EQ(read->alpha, 8);
  EXPECT_THROW(add_lora(*model, config_of({"v_proj"}), 7), Error) << "one adapter at a time";
}

TEST(Lora, MergingGivesTheSameOutputsAsTheAdapterBesideTheWeights) {
  auto model = tiny_model(2);
  const at::Tensor base = logits_of(model);
  add_lora(*model, config_of({"all-linear"}), 3);
  train_adapters(model);
  const at::Tensor adapted = logits_of(model);
  EXPECT_GT((adapted - base).abs().max().item<double>(), 1e-3) << "the trained adapter does something";
  merge_lora(*model);
  EXPECT_FALSE(lora_config_of(*model));
  EXPECT_EQ(model->named_parameters().size(), tiny_model(2)->named_parameters().size());
  EXPECT_LT((logits_of(model) - adapted).abs().max().item<double>(), 1e-5);
}

TEST(Lora, TheAdapterRoundTripsThroughItsPeftFiles) {
  test::TempDir dir;
  auto model = tiny_model(3);
  add_lora(*model, config_of({"v_proj", "o_proj", "up_proj"}, 2, 5), 4);
  train_adapters(model);
  write_adapter(*model, dir.path(), std::nullopt);
  EXPECT_TRUE(has_adapter(dir.path()));
  auto again = tiny_model(3);
  load_adapter(*again, dir.path());
  EXPECT_TRUE(logits_of(again).equal(logits_of(model)));
  const auto config = nlohmann::json::parse(test::read_bytes(dir / kAdapterConfigFile));
  EXPECT_EQ(config["r"], 2);
  EXPECT_EQ(config["lora_alpha"], 5.0);
  EXPECT_EQ(config["target_modules"], nlohmann::json({"o_proj", "up_proj", "v_proj"}));
  // An adapter file for another model's shapes is refused, naming the file.
  Qwen2Config wider = test::tiny_config();
  wider.hidden_size *= 2, wider.intermediate_size *= 2;
  Qwen2ForCausalLM other(wider);
  EXPECT_THAT(test::error_of<Error>([&] { load_adapter(*other, dir.path()); }),
              testing::AllOf(testing::HasSubstr(kAdapterWeightsFile), testing::HasSubstr("but the adapter expects")));
}

TEST(Lora, UnknownTargetsAreRefusedByName) {
  EXPECT_THAT(test::error_of<UsageError>([] {
                resolve_lora_targets({"q_proj", "qkv"}, "model.lora_encoder");
              }),
              testing::HasSubstr("model.lora_encoder: unknown target 'qkv'"));
  EXPECT_EQ(resolve_lora_targets({"all-linear"}, "k").size(), lora_target_names().size());
}

}  // namespace
}  // namespace c3
