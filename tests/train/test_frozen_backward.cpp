// What c3 train's optimizer set-up asks of backward: no gradient for a frozen part, nor for the
// weights under a LoRA adapter (only the adapter's), so those cost no weight-gradient compute.
#include <gtest/gtest.h>

#include "c3/model/c3_loss.h"
#include "c3/model/c3_prompt.h"
#include "c3/model/lora.h"
#include "c3/train/trainer.h"
#include "test_support.h"
#include "train/train_setup.h"

namespace c3 {
namespace {

// One forward and backward of the C3 loss with the optimizer c3 train builds from `s`.
C3Model backward_once(const TrainSettings& s, bool tied_encoder = true) {
  C3Config config = test::tiny_c3_config(4);
  config.encoder.tie_word_embeddings = tied_encoder;
  C3Model model(config);
  model->init_weights(5);
  for (auto [side, targets] :
       {std::pair{model->encoder.get(), &s.lora_encoder}, std::pair{model->decoder.get(), &s.lora_decoder}})
    if (!targets->empty())
      add_lora(*side, LoraConfig{s.lora_rank, s.lora_alpha, 0, resolve_lora_targets(*targets, "t")}, 1);
  AdamW optimizer = train_setup::make_optimizer(model, s, 0, 1);
  const test::ByteTokenizer tokenizer;
  const C3Prompt prompt(tokenizer, 4);
  const auto a = tokenizer.encode("some text to compress"), b = tokenizer.encode("and another");
  c3_loss(model, make_c3_batch(prompt, {&a, &b}, true)).loss_sum.backward();
  return model;
}

void expect_gradients(C3Model& model, C3Part part, bool lora, bool want) {
  for (auto& [name, p] : model->part_parameters(part)) {
    if (is_lora_parameter(name) != lora) continue;
    EXPECT_EQ(p.grad().defined(), want) << name;
    EXPECT_EQ(p.requires_grad(), want) << name;
  }
}

TEST(FrozenBackward, ComputesNoGradientForFrozenPartsNorForTheWeightsUnderAnAdapter) {
  TrainSettings frozen;
  frozen.frozen = {"decoder"};
  C3Model a = backward_once(frozen);
  expect_gradients(a, C3Part::decoder, false, false);
  expect_gradients(a, C3Part::encoder, false, true);
  expect_gradients(a, C3Part::query, false, true);

  TrainSettings adapted;
  adapted.lora_encoder = {"all-linear"};
  adapted.frozen = {"decoder"};
  C3Model b = backward_once(adapted);
  expect_gradients(b, C3Part::encoder, true, true);
  expect_gradients(b, C3Part::encoder, false, false);
  expect_gradients(b, C3Part::decoder, false, false);
  expect_gradients(b, C3Part::projector, false, true);
}

// An untied encoder's lm_head is never used (compress stops at the final norm): it is not trained,
// so it holds no optimizer state and ZeRO-2 has no zeros to send for it.
TEST(FrozenBackward, AnUntiedEncodersLmHeadIsNotTrained) {
  C3Model model = backward_once(TrainSettings{}, /*tied_encoder=*/false);
  ASSERT_TRUE(model->encoder->lm_head);
  EXPECT_FALSE(model->encoder->lm_head->weight.requires_grad());
  EXPECT_FALSE(model->encoder->lm_head->weight.grad().defined());
  TrainSettings s;
  const AdamW optimizer = train_setup::make_optimizer(model, s, 0, 1);
  for (const auto& [p, owner] : optimizer.parameter_owners()) EXPECT_FALSE(p.is_same(model->encoder->lm_head->weight));
  EXPECT_TRUE(model->encoder->model->embed_tokens->weight.grad().defined()) << "the rest of the encoder trains";
}

}  // namespace
}  // namespace c3
