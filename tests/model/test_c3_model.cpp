// The C3 wiring (spec section 1): prompt layout, slot overwrites, labels, loss, gradients,
// recomputation, and the released checkpoint layout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_io.h"
#include "c3/model/c3_loss.h"
#include "c3/model/c3_prompt.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

const test::ByteTokenizer kTokenizer;

std::vector<int32_t> ids(const std::string& text) { return kTokenizer.encode(text); }

C3Model tiny_model(int64_t n = 4, at::ScalarType dtype = at::kFloat, at::Device device = at::kCPU, uint64_t seed = 1) {
  C3Model model(test::tiny_c3_config(n), at::TensorOptions().dtype(dtype).device(device));
  model->init_weights(seed);
  return model;
}

TEST(C3Prompt, LayoutMatchesTheSpec) {
  const C3Prompt prompt(kTokenizer, 3);
  const auto& p = prompt.decoder_prompt();
  const std::string expected =
      "<|im_start|>system\nYou should follow the instructions carefully and explain your answers in detail.<|im_end|>"
      "<|im_start|>user\n<img><imgpad><imgpad><imgpad></img>\nRepeat the text: <|im_end|><|im_start|>assistant\n";
  EXPECT_EQ(kTokenizer.decode(p), expected);
  EXPECT_EQ(kTokenizer.decode(prompt.encoder_ids(ids("abc"))), "abc<img><imgpad><imgpad><imgpad></img>");
  EXPECT_THROW(C3Prompt(kTokenizer, 3, "no slots here"), UsageError);
  EXPECT_THROW(C3Prompt(kTokenizer, 3, "{latents}{latents}"), UsageError);
  const C3Prompt custom(kTokenizer, 2, "Q:{latents}|{instruction}|", "Say it: ");
  EXPECT_EQ(kTokenizer.decode(custom.decoder_prompt()), "Q:<img><imgpad><imgpad></img>|Say it: |");
}

TEST(C3Prompt, AnInstructionIsTextEvenWithSpecialTokenStrings) {
  const int32_t im_end = *kTokenizer.token_id("<|im_end|>");
  auto count_im_end = [&](const C3Prompt& p) {
    return std::count(p.decoder_prompt().begin(), p.decoder_prompt().end(), im_end);
  };
  EXPECT_EQ(count_im_end(C3Prompt(kTokenizer, 2)), 2) << "the template's own";
  const C3Prompt asked(kTokenizer, 2, kDefaultPromptTemplate, "Say <|im_end|> and <img>: ");
  EXPECT_EQ(count_im_end(asked), 2) << "none from the instruction";
  EXPECT_EQ(std::count(asked.decoder_prompt().begin(), asked.decoder_prompt().end(), *kTokenizer.token_id("<img>")), 1);
  EXPECT_NE(kTokenizer.decode(asked.decoder_prompt()).find("Say <|im_end|> and <img>: <|im_end|>"), std::string::npos);
}

TEST(C3Prompt, BatchSlotsAndLabels) {
  const C3Prompt prompt(kTokenizer, 2);
  const auto a = ids("hello"), b = ids("hi");
  const C3Batch batch = make_c3_batch(prompt, {&a, &b}, true);
  const int64_t p = static_cast<int64_t>(prompt.decoder_prompt().size());
  ASSERT_EQ(batch.encoder_ids.size(1), 5 + 4);
  ASSERT_EQ(batch.decoder_ids.size(1), p + 5 + 1);
  // Encoder: slots right after <img>, per row; padding masked.
  EXPECT_TRUE(batch.encoder_slots[0].nonzero().view(-1).equal(at::tensor({6, 7}, at::kLong)));
  EXPECT_TRUE(batch.encoder_slots[1].nonzero().view(-1).equal(at::tensor({3, 4}, at::kLong)));
  EXPECT_EQ(batch.encoder_mask[1].sum().item<int64_t>(), 2 + 4);
  EXPECT_EQ(batch.encoder_ids[1][2].item<int64_t>(), *kTokenizer.token_id("<img>"));
  EXPECT_EQ(batch.encoder_ids[1][5].item<int64_t>(), *kTokenizer.token_id("</img>"));
  // Decoder: the same slot positions in every row, inside the prompt.
  EXPECT_EQ(batch.decoder_slots.sum().item<int64_t>(), 4);
  EXPECT_TRUE(batch.decoder_ids.index({batch.decoder_slots}).eq(prompt.imgpad()).all().item<bool>());
  // Labels: only TEXT and the closing <|im_end|>.
  const at::Tensor supervised = batch.labels.ne(kIgnoreIndex);
  EXPECT_EQ(supervised.sum().item<int64_t>(), 6 + 3);
  EXPECT_EQ(batch.supervised_tokens, 6 + 3);
  EXPECT_FALSE(supervised.narrow(1, 0, p).any().item<bool>()) << "nothing in the prompt is supervised";
  EXPECT_EQ(kTokenizer.decode({batch.labels[1][p].item<int32_t>(), batch.labels[1][p + 1].item<int32_t>(),
                               batch.labels[1][p + 2].item<int32_t>()}),
            "hi<|im_end|>");
  EXPECT_EQ(batch.labels[1][p + 3].item<int64_t>(), kIgnoreIndex) << "padding is not supervised";
  EXPECT_EQ(batch.decoder_mask[1].sum().item<int64_t>(), p + 3);
}

TEST(C3Prompt, AContextOfKSpansIsKBlocksInOrder) {
  const C3Prompt prompt(kTokenizer, 2, "Q:{latents}|{instruction}|", kContinueInstruction);
  EXPECT_EQ(kTokenizer.decode(prompt.decoder_prompt(0)), "Q:|Continue the text: |");
  EXPECT_EQ(kTokenizer.decode(prompt.decoder_prompt(2)),
            "Q:<img><imgpad><imgpad></img><img><imgpad><imgpad></img>|Continue the text: |");
  EXPECT_EQ(prompt.decoder_prompt(1), prompt.decoder_prompt());
  EXPECT_EQ(kTokenizer.decode(prompt.decoder_prompt_with_text(ids("plain"))), "Q:plain|Continue the text: |");
  EXPECT_EQ(prompt.prefix_tokens(), 2);
}

// One batch of three kinds of rows: a continuation with two spans of context, a reconstruction,
// and a row with no context at all.
TEST(C3Prompt, MixedRowsLayOutTheirSpansBlocksAndAnswers) {
  const C3Prompt repeat(kTokenizer, 2, "Q:{latents}|{instruction}|", "R: ");
  const C3Prompt go_on(kTokenizer, 2, "Q:{latents}|{instruction}|", "C: ");
  const auto s1 = ids("one "), s2 = ids("two "), s3 = ids("three"), r = ids("abc");
  const C3Batch batch = make_c3_batch({{&go_on, {&s1, &s2}, &s3}, {&repeat, {&r}, &r}, {&go_on, {}, &s1}});
  ASSERT_EQ(batch.size(), 3);
  // Encoder rows: the context spans in order (row 0's two, then row 1's).
  ASSERT_EQ(batch.encoder_ids.size(0), 3);
  EXPECT_EQ(kTokenizer.decode(std::vector<int32_t>(batch.encoder_ids[1].data_ptr<int64_t>(),
                                                   batch.encoder_ids[1].data_ptr<int64_t>() + 8)),
            "two <img><imgpad><imgpad></img>");
  EXPECT_TRUE(batch.encoder_slots[2].nonzero().view(-1).equal(at::tensor({4, 5}, at::kLong)));
  // Decoder: row 0 has 2 blocks (4 slots), row 1 one, row 2 none.
  EXPECT_TRUE(batch.decoder_slots.sum(1).equal(at::tensor({4, 2, 0}, at::kLong)));
  EXPECT_TRUE(batch.decoder_slots[0].nonzero().view(-1).equal(at::tensor({3, 4, 7, 8}, at::kLong)));
  EXPECT_TRUE(batch.decoder_ids.index({batch.decoder_slots}).eq(repeat.imgpad()).all().item<bool>());
  // Labels: each row's answer and <|im_end|>, nothing of its prompt.
  auto supervised_text = [&](int64_t row) {
    std::vector<int32_t> out;
    for (int64_t i = 0; i < batch.labels.size(1); ++i)
      if (batch.labels[row][i].item<int64_t>() != kIgnoreIndex) out.push_back(batch.labels[row][i].item<int32_t>());
    return kTokenizer.decode(out);
  };
  EXPECT_EQ(supervised_text(0), "three<|im_end|>");
  EXPECT_EQ(supervised_text(1), "abc<|im_end|>");
  EXPECT_EQ(supervised_text(2), "one <|im_end|>");
  EXPECT_EQ(batch.supervised_tokens, 6 + 4 + 5);
  const int64_t p0 = static_cast<int64_t>(go_on.decoder_prompt(2).size());
  EXPECT_EQ(batch.labels[0][p0].item<int64_t>(), s3[0]) << "the answer starts right after the prompt";
  EXPECT_EQ(batch.decoder_mask[2].sum().item<int64_t>(), static_cast<int64_t>(go_on.decoder_prompt(0).size()) + 5);
  // No context anywhere: no encoder rows.
  EXPECT_FALSE(make_c3_batch({{&go_on, {}, &s1}}).has_context());
}

// Each row of a mixed batch gets its own spans' latents: its loss is the loss of the row alone.
TEST(C3Model, EachRowOfAMixedBatchHasTheLossItHasAlone) {
  C3Model model = tiny_model(2);
  torch::NoGradGuard no_grad;
  const C3Prompt repeat(kTokenizer, 2);
  const C3Prompt go_on(kTokenizer, 2, kDefaultPromptTemplate, kContinueInstruction);
  const auto s1 = ids("one two "), s2 = ids("three four "), s3 = ids("five"), r = ids("a longer text here");
  const std::vector<C3Example> rows{{&go_on, {&s1, &s2}, &s3}, {&repeat, {&r}, &r}, {&go_on, {}, &s2}};
  const C3LossOutput together = c3_loss(model, make_c3_batch(rows), 0);
  double sum = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const C3LossOutput alone = c3_loss(model, make_c3_batch({rows[i]}), 0);
    EXPECT_NEAR(together.row_loss_sum[static_cast<int64_t>(i)].item<double>(), alone.loss_sum.item<double>(), 1e-3)
        << "row " << i;
    sum += alone.loss_sum.item<double>();
  }
  EXPECT_NEAR(together.loss_sum.item<double>(), sum, 1e-3);
  // The spans' order matters: swapped, row 0 sees another context.
  const C3LossOutput swapped = c3_loss(model, make_c3_batch({{&go_on, {&s2, &s1}, &s3}}), 0);
  EXPECT_GT(std::abs(swapped.loss_sum.item<double>() - together.row_loss_sum[0].item<double>()), 1e-4);
}

class C3ModelTest : public test::DeviceDtypeTest {};

TEST_P(C3ModelTest, SlotsAreOverwrittenWhereTheSpecSays) {
  const auto [device, dtype] = GetParam();
  C3Model model = tiny_model(3, dtype, device);
  torch::NoGradGuard no_grad;
  const C3Prompt prompt(kTokenizer, 3);
  const auto a = ids("the cat"), b = ids("a dog sat");
  const C3Batch batch = make_c3_batch(prompt, {&a, &b}, true).to(device);

  // Restated by hand: embed, put Q row i in slot i of each row, run the body, take the slots.
  at::Tensor embeds = model->encoder->embed(batch.encoder_ids);
  for (int64_t r = 0; r < 2; ++r) {
    const int64_t first = (r == 0 ? 7 : 9) + 1;  // after the text and <img>
    for (int64_t i = 0; i < 3; ++i) embeds[r][first + i] = model->query[i];
  }
  const at::Tensor hidden = model->encoder->hidden_states(embeds, batch.encoder_mask);
  at::Tensor states = at::stack({hidden[0].narrow(0, 8, 3), hidden[1].narrow(0, 10, 3)});
  const at::Tensor expected = model->projector(states);
  const at::Tensor latents = model->compress(batch.encoder_ids, batch.encoder_slots);
  ASSERT_EQ(latents.sizes(), (std::vector<int64_t>{2, 3, 96}));
  // compress runs the encoder's last layer at the slots only: the same values, summed in another order.
  const double tol = dtype == at::kFloat ? 1e-5 : 2e-2;
  EXPECT_TRUE(at::allclose(latents.to(at::kFloat), expected.to(at::kFloat), tol, tol));

  const at::Tensor dec = model->decoder_embeds(batch.decoder_ids, batch.decoder_slots, latents);
  const at::Tensor plain = model->decoder->embed(batch.decoder_ids);
  const at::Tensor slots = batch.decoder_slots;
  EXPECT_TRUE(dec.index({slots}).equal(latents.reshape({6, 96})));
  EXPECT_TRUE(dec.index({slots.logical_not()}).equal(plain.index({slots.logical_not()})))
      << "every other row keeps its token embedding (<img> and </img> included)";
}

TEST_P(C3ModelTest, LossIsTheMeanCrossEntropyOverSupervisedTokens) {
  const auto [device, dtype] = GetParam();
  C3Model model = tiny_model(3, dtype, device);
  const C3Prompt prompt(kTokenizer, 3);
  const auto a = ids("the cat"), b = ids("a dog sat");
  const C3Batch batch = make_c3_batch(prompt, {&a, &b}, true).to(device);
  torch::NoGradGuard no_grad;
  const C3LossOutput out = c3_loss(model, batch, /*chunk_tokens=*/4);
  // The naive way: every position of both models, full logits, the mean over the shifted labels.
  const at::Tensor latents = model->compress(batch.encoder_ids, batch.encoder_slots);
  const at::Tensor hidden = model->decoder->hidden_states(
      model->decoder_embeds(batch.decoder_ids, batch.decoder_slots, latents), batch.decoder_mask);
  const at::Tensor logits = model->decoder->logits(hidden).to(at::kFloat);
  const int64_t t = logits.size(1);
  const at::Tensor naive =
      at::cross_entropy_loss(logits.narrow(1, 0, t - 1).reshape({-1, logits.size(2)}),
                             batch.labels.narrow(1, 1, t - 1).reshape(-1), {}, at::Reduction::Mean, kIgnoreIndex);
  EXPECT_EQ(out.tokens, 7 + 9 + 2);
  EXPECT_NEAR((out.loss_sum / out.tokens).item<double>(), naive.item<double>(), dtype == at::kFloat ? 1e-5 : 1e-2);
  EXPECT_TRUE(std::isfinite(out.loss_sum.item<double>()));
}

INSTANTIATE_TEST_SUITE_P(DeviceDtype, C3ModelTest, testing::ValuesIn(test::device_dtype_params()), test::param_name);

std::map<std::string, at::Tensor> gradients_of(C3Model& model, bool checkpointing, int64_t chunk) {
  model->zero_grad();
  model->set_gradient_checkpointing(checkpointing);
  const C3Prompt prompt(kTokenizer, 2);
  const auto a = ids("one two"), b = ids("three four five");
  const C3LossOutput out = c3_loss(model, make_c3_batch(prompt, {&a, &b}, true), chunk);
  (out.loss_sum / out.tokens).backward();
  std::map<std::string, at::Tensor> grads;
  for (const auto& item : model->named_parameters()) {
    if (item.value().grad().defined()) grads[item.key()] = item.value().grad().clone();
  }
  return grads;
}

TEST(C3Model, GradientsReachEveryPartAndRecomputationChangesNothing) {
  C3Model model = tiny_model(2);
  const auto plain = gradients_of(model, false, 0);
  ASSERT_EQ(plain.size(), model->parameters().size()) << "every parameter gets a gradient";
  for (C3Part part : all_c3_parts()) {
    double norm = 0;
    for (const auto& [name, p] : model->part_parameters(part)) norm += plain.at(name).norm().item<double>();
    EXPECT_GT(norm, 0) << c3_part_name(part);
  }
  EXPECT_GT(plain.at("llm1.model.embed_tokens.weight").norm().item<double>(), 0) << "encoder embeddings train";
  const auto recomputed = gradients_of(model, true, 5);
  ASSERT_EQ(recomputed.size(), plain.size());
  for (const auto& [name, g] : plain)
    EXPECT_TRUE(at::allclose(recomputed.at(name), g, 1e-5, 1e-7)) << name << " differs with recomputation";
}

TEST(C3Model, FrozenPartsGetNoGradient) {
  C3Model model = tiny_model(2);
  for (auto& [name, p] : model->part_parameters(C3Part::decoder)) p.requires_grad_(false);
  const auto grads = gradients_of(model, true, 3);
  for (const auto& [name, p] : model->part_parameters(C3Part::decoder)) EXPECT_EQ(grads.count(name), 0u) << name;
  EXPECT_EQ(grads.count("Q"), 1u);
  EXPECT_EQ(grads.count("llm1.model.norm.weight"), 1u);
}

TEST(C3Checkpoint, ReleasedLayoutRoundTripsBitIdentically) {
  test::TempDir dir;
  C3Model model = tiny_model(4);
  model->set_trained_lengths(512, 300);
  save_c3(model, dir / "c3", {}, "");
  // The authors' layout: decoder + Q + projector at the root, encoder in llm1/.
  io::CheckpointDir root(dir / "c3"), llm1(dir / "c3" / "llm1");
  EXPECT_EQ(root.config()["model_type"], "C3");
  EXPECT_EQ(root.config()["latent_token_len"], 4);
  EXPECT_EQ(root.config()["contexts_compression_llm_hidden_size"], 64);
  EXPECT_EQ(root.config()["hidden_size"], 96);
  EXPECT_EQ(root.config()["c3_max_length"], 512);
  EXPECT_EQ(llm1.config()["model_type"], "qwen2");
  EXPECT_EQ(root.tensor("model.Q.weight").shape, (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(root.tensor("model.mm_projector.weight").shape, (std::vector<int64_t>{96, 64}));
  EXPECT_EQ(root.tensor("model.mm_projector.bias").shape, (std::vector<int64_t>{96}));
  EXPECT_TRUE(root.contains("model.layers.1.mlp.down_proj.weight"));
  EXPECT_FALSE(root.contains("lm_head.weight")) << "tied decoders store no lm_head";
  EXPECT_TRUE(llm1.contains("model.embed_tokens.weight"));
  EXPECT_FALSE(llm1.contains("model.Q.weight"));
  EXPECT_TRUE(is_c3_checkpoint(dir / "c3"));

  C3Model loaded = load_c3(dir / "c3");
  const auto a = model->named_parameters(), b = loaded->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(item.value().equal(b[item.key()])) << item.key();
  EXPECT_EQ(loaded->config().latent_tokens, 4);
  EXPECT_EQ(loaded->config().max_length, 512);
  EXPECT_EQ(loaded->config().max_text_tokens, 300);
}

// One C3 may pair families: a Llama encoder (biases, Llama 3 RoPE) with a Qwen3 decoder (q/k norms).
// The root's config.json records the decoder's family, llm1/ is a plain checkpoint of its own.
TEST(C3Checkpoint, EncoderAndDecoderOfDifferentFamiliesRoundTrip) {
  test::TempDir dir;
  C3Config c = test::tiny_c3_config(4);
  c.encoder.model_type = "llama";
  c.encoder.qkv_bias = c.encoder.o_proj_bias = c.encoder.mlp_bias = true;
  c.encoder.rope_scaling.type = "llama3";
  c.encoder.rope_scaling.factor = 8;
  c.encoder.rope_scaling.original_max_position_embeddings = 64;
  c.decoder.model_type = "qwen3";
  c.decoder.qkv_bias = false;
  c.decoder.qk_norm = true;
  C3Model model(c);
  model->init_weights(2);
  save_c3(model, dir / "c3", {}, "");
  io::CheckpointDir root(dir / "c3"), llm1(dir / "c3" / "llm1");
  EXPECT_EQ(root.config()["model_type"], "C3");
  EXPECT_EQ(root.config()["c3_decoder_model_type"], "qwen3");
  EXPECT_EQ(root.config()["architectures"], nlohmann::json::array({"Qwen3ForCausalLM"}));
  EXPECT_EQ(llm1.config()["model_type"], "llama");
  EXPECT_EQ(llm1.config()["rope_scaling"]["rope_type"], "llama3");
  EXPECT_TRUE(root.contains("model.layers.0.self_attn.q_norm.weight"));
  EXPECT_FALSE(root.contains("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_TRUE(llm1.contains("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_TRUE(llm1.contains("model.layers.0.mlp.up_proj.bias"));

  C3Model loaded = load_c3(dir / "c3");
  EXPECT_EQ(loaded->config().decoder.model_type, "qwen3");
  EXPECT_TRUE(loaded->config().decoder.qk_norm);
  EXPECT_EQ(loaded->config().encoder.model_type, "llama");
  EXPECT_TRUE(loaded->config().encoder.rope_scaling == c.encoder.rope_scaling);
  const auto a = model->named_parameters(), b = loaded->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(item.value().equal(b[item.key()])) << item.key();
  torch::NoGradGuard no_grad;
  const C3Prompt prompt(kTokenizer, 4);
  const auto text = ids("the cat sat on the mat");
  const C3Batch batch = make_c3_batch(prompt, {&text}, false);
  EXPECT_TRUE(model->compress(batch.encoder_ids, batch.encoder_slots)
                  .equal(loaded->compress(batch.encoder_ids, batch.encoder_slots)));
  EXPECT_EQ(model->config().parameter_count(), loaded->config().parameter_count());
  int64_t stored = 0;
  for (const auto& item : b) stored += item.value().numel();
  EXPECT_EQ(loaded->config().parameter_count(), stored) << "biases and norms counted";
}

// c3 init's pieces: an encoder cut to its first layers (the rest never loaded), and embedding
// tables grown for new tokens, old rows kept and new ones their mean.
TEST(C3Checkpoint, AnEncoderCutToItsFirstLayersAndTablesGrownForNewTokens) {
  test::TempDir dir;
  Qwen2Config arch = test::tiny_config();
  arch.num_hidden_layers = 3;
  Qwen2ForCausalLM llm(arch);
  llm->init_weights(4);
  save_qwen2(llm, dir / "llm");
  C3LoadOptions options;
  options.latent_tokens = 2;
  C3Model cut = c3_from_qwen2(Qwen2Source{dir / "llm", {}, 1}, Qwen2Source{dir / "llm", {}, 0}, options);
  EXPECT_EQ(cut->config().encoder.num_hidden_layers, 1);
  EXPECT_EQ(cut->config().decoder.num_hidden_layers, 3);
  EXPECT_TRUE(cut->encoder->named_parameters()["model.layers.0.mlp.up_proj.weight"].equal(
      llm->named_parameters()["model.layers.0.mlp.up_proj.weight"]));
  EXPECT_THROW(c3_from_qwen2(Qwen2Source{dir / "llm", {}, 4}, Qwen2Source{dir / "llm", {}, 0}, options), Error);

  const int64_t rows = arch.vocab_size + 3;
  C3Model grown = grow_vocabulary(cut, rows);
  const at::Tensor before = cut->decoder->model->embed_tokens->weight,
                   after = grown->decoder->model->embed_tokens->weight;
  ASSERT_EQ(after.size(0), rows);
  EXPECT_TRUE(after.narrow(0, 0, before.size(0)).equal(before));
  EXPECT_TRUE(after[rows - 1].allclose(before.mean(0)));
  EXPECT_EQ(grown->encoder->model->embed_tokens->weight.size(0), rows);
  EXPECT_TRUE(grown->query.equal(cut->query));
  EXPECT_TRUE(grown->projector->weight.equal(cut->projector->weight));
}

TEST(C3Checkpoint, ChangingTheNumberOfLatentsNeedsConsent) {
  test::TempDir dir;
  C3Model model = tiny_model(4);
  save_c3(model, dir / "c3", {}, "");
  C3LoadOptions options;
  options.latent_tokens = 6;
  try {
    load_c3(dir / "c3", options);
    FAIL() << "a different N must be refused";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("4 latent tokens"));
    EXPECT_THAT(e.what(), HasSubstr("model.resize_latents"));
  }
  options.allow_resize_latents = true;
  C3Model grown = load_c3(dir / "c3", options);
  ASSERT_EQ(grown->query.size(0), 6);
  EXPECT_TRUE(grown->query.narrow(0, 0, 4).equal(model->query)) << "existing rows are kept";
  EXPECT_GT(grown->query.narrow(0, 4, 2).abs().sum().item<double>(), 0) << "new rows are drawn";
  options.latent_tokens = 2;
  C3Model shrunk = load_c3(dir / "c3", options);
  EXPECT_TRUE(shrunk->query.equal(model->query.narrow(0, 0, 2)));
}

TEST(C3Checkpoint, WrongShapesAreClearErrors) {
  test::TempDir dir;
  C3Model model = tiny_model(4);
  save_c3(model, dir / "c3", {}, "");
  // Swap in an encoder of another width: Q no longer matches it.
  Qwen2Config other = test::tiny_config();
  other.vocab_size = 262;
  other.hidden_size = 32, other.head_dim = 8;
  Qwen2ForCausalLM encoder(other);
  encoder->init_weights(3);
  fs::remove_all(dir / "c3" / "llm1");
  save_qwen2(encoder, dir / "c3" / "llm1");
  try {
    load_c3(dir / "c3");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("model.Q.weight"));
    EXPECT_THAT(e.what(), HasSubstr("hidden size 32"));
  }
  EXPECT_THROW(read_c3_config(dir / "c3" / "llm1"), Error) << "a plain Qwen2 folder is not a C3 checkpoint";
}

TEST(C3Checkpoint, FromTwoQwen2CheckpointsOfDifferentSizes) {
  test::TempDir dir;
  const C3Config config = test::tiny_c3_config(3);
  Qwen2ForCausalLM encoder(config.encoder), decoder(config.decoder);
  encoder->init_weights(5), decoder->init_weights(6);
  save_qwen2(encoder, dir / "enc"), save_qwen2(decoder, dir / "dec");
  C3LoadOptions options;
  options.latent_tokens = 3;
  C3Model model = c3_from_qwen2(dir / "enc", dir / "dec", options);
  EXPECT_TRUE(model->encoder->model->embed_tokens->weight.equal(encoder->model->embed_tokens->weight));
  EXPECT_TRUE(model->decoder->model->norm->weight.equal(decoder->model->norm->weight));
  EXPECT_EQ(model->projector->weight.sizes(), (std::vector<int64_t>{96, 64}));
  EXPECT_EQ(model->projector->bias.abs().sum().item<double>(), 0.0);
  EXPECT_GT(model->query.std().item<double>(), 0.01);
  // One side pretrained, the other from scratch.
  C3Model mixed = c3_from_qwen2(Qwen2Source{dir / "enc", {}}, Qwen2Source{"", config.decoder}, options);
  EXPECT_TRUE(mixed->encoder->model->embed_tokens->weight.equal(encoder->model->embed_tokens->weight));
  EXPECT_FALSE(mixed->decoder->model->embed_tokens->weight.equal(decoder->model->embed_tokens->weight));
  EXPECT_TRUE(mixed->decoder->model->norm->weight.eq(1).all().item<bool>()) << "HF's init for a new side";
}

}  // namespace
}  // namespace c3
