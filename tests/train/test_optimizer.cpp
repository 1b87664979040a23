// AdamW against torch::optim::AdamW (the oracle), master weights for bf16, state round trips,
// and the learning-rate schedules against Hugging Face's formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "c3/train/communicator.h"
#include "c3/train/memory_estimate.h"
#include "c3/train/optimizer.h"
#include "c3/train/schedule.h"
#include "c3/util/error.h"

namespace c3 {
namespace {

std::vector<at::Tensor> make_params(uint64_t seed, at::ScalarType dtype = at::kFloat) {
  torch::manual_seed(seed);
  return {torch::randn({5, 3}).to(dtype).requires_grad_(), torch::randn({3}).to(dtype).requires_grad_()};
}

void set_grads(std::vector<at::Tensor>& params, int step) {
  torch::manual_seed(100 + step);
  for (auto& p : params) p.mutable_grad() = torch::randn(p.sizes()).to(p.scalar_type());
}

TEST(AdamW, MatchesTorchAdamWStepForStep) {
  auto ours = make_params(1), theirs = make_params(1);
  AdamWOptions o;
  o.weight_decay = 0.1;
  o.beta2 = 0.99;
  AdamW opt({{"all", {{"w", ours[0]}, {"b", ours[1]}}, 1.0, /*decay_vectors=*/true}}, o);
  torch::optim::AdamW oracle(theirs, torch::optim::AdamWOptions(0.01).betas({0.9, 0.99}).eps(1e-8).weight_decay(0.1));
  for (int step = 0; step < 6; ++step) {
    set_grads(ours, step), set_grads(theirs, step);
    opt.step(0.01);
    oracle.step();
    for (size_t i = 0; i < ours.size(); ++i)
      EXPECT_TRUE(at::allclose(ours[i], theirs[i], 1e-6, 1e-7)) << "step " << step;
  }
  EXPECT_EQ(opt.steps(), 6);
}

TEST(AdamW, GroupsScaleTheLearningRateAndVectorsSkipDecay) {
  auto ours = make_params(2), scaled = make_params(2), nodecay = make_params(2);
  AdamWOptions o;
  o.weight_decay = 0.5;
  AdamW opt({{"a", {{"w", ours[0]}}, 0.25, true}, {"b", {{"b", ours[1]}}, 1.0, false}}, o);
  torch::optim::AdamW oracle_w({scaled[0]}, torch::optim::AdamWOptions(0.01 * 0.25).weight_decay(0.5));
  torch::optim::AdamW oracle_b({nodecay[1]}, torch::optim::AdamWOptions(0.01).weight_decay(0.0));
  for (int step = 0; step < 3; ++step) {
    set_grads(ours, step), set_grads(scaled, step), set_grads(nodecay, step);
    opt.step(0.01), oracle_w.step(), oracle_b.step();
  }
  EXPECT_TRUE(at::allclose(ours[0], scaled[0], 1e-6, 1e-7));
  EXPECT_TRUE(at::allclose(ours[1], nodecay[1], 1e-6, 1e-7));
}

TEST(AdamW, Bf16ParametersKeepFp32MasterWeights) {
  auto fp32 = make_params(3), bf16 = make_params(3, at::kBFloat16);
  AdamW a({{"g", {{"w", fp32[0]}, {"b", fp32[1]}}, 1.0, false}}, {});
  AdamW b({{"g", {{"w", bf16[0]}, {"b", bf16[1]}}, 1.0, false}}, {});
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < 2; ++i) fp32[i].copy_(bf16[i]);  // same starting values
  }
  // Tiny updates vanish in bf16 arithmetic but accumulate in the fp32 masters.
  for (int step = 0; step < 20; ++step) {
    set_grads(fp32, step), set_grads(bf16, step);
    a.step(1e-4), b.step(1e-4);
  }
  std::map<std::string, at::Tensor> state;
  for (auto& [k, v] : b.state()) state[k] = v;
  ASSERT_EQ(state.count("master.w"), 1u);
  EXPECT_EQ(state["master.w"].scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(state["master.w"], fp32[0], 1e-5, 1e-6)) << "the master follows the fp32 trajectory";
  EXPECT_TRUE(bf16[0].equal(state["master.w"].to(at::kBFloat16))) << "the parameter is its master, rounded";
  EXPECT_EQ(AdamW({{"g", {{"w", fp32[0]}}, 1.0, false}}, {}).state().size(), 2u) << "fp32 needs no master";
}

TEST(AdamW, StateRoundTripContinuesExactly) {
  auto straight = make_params(4, at::kBFloat16), resumed = make_params(4, at::kBFloat16);
  AdamW a({{"g", {{"w", straight[0]}, {"b", straight[1]}}, 1.0, false}}, {});
  for (int step = 0; step < 5; ++step) set_grads(straight, step), a.step(1e-3);
  AdamW b({{"g", {{"w", resumed[0]}, {"b", resumed[1]}}, 1.0, false}}, {});
  for (int step = 0; step < 3; ++step) set_grads(resumed, step), b.step(1e-3);
  std::map<std::string, at::Tensor> saved;
  for (auto& [k, v] : b.state()) saved[k] = v.clone();
  auto fresh = make_params(99, at::kBFloat16);  // different values: all must come from the state
  AdamW c({{"g", {{"w", fresh[0]}, {"b", fresh[1]}}, 1.0, false}}, {});
  c.load_state(saved, 3, "state");
  for (int step = 3; step < 5; ++step) set_grads(fresh, step), c.step(1e-3);
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(fresh[i].equal(straight[i]));
  saved.erase("exp_avg.w");
  EXPECT_THROW(c.load_state(saved, 3, "state"), Error);
}

TEST(AdamW, GradNormAndClipping) {
  auto params = make_params(5);
  AdamW opt({{"g", {{"w", params[0]}, {"b", params[1]}}, 1.0, false}}, {});
  params[0].mutable_grad() = at::full({5, 3}, 1.0);
  params[1].mutable_grad() = at::full({3}, 2.0);
  EXPECT_NEAR(opt.grad_norm(), std::sqrt(15.0 + 12.0), 1e-6);
  opt.scale_grads(0.5);
  EXPECT_NEAR(opt.grad_norm(), 0.5 * std::sqrt(27.0), 1e-6);
  opt.zero_grad();
  EXPECT_FALSE(params[0].grad().defined());
}

TEST(Schedule, FollowsHuggingFaceDefinitions) {
  LrSchedule s;
  s.lr = 2.0, s.warmup_steps = 10, s.total_steps = 110;
  EXPECT_DOUBLE_EQ(s.at(0), 0.0) << "HF's first update uses factor(0) = 0 under warmup";
  EXPECT_DOUBLE_EQ(s.at(5), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 2.0);
  EXPECT_NEAR(s.at(60), 1.0, 1e-12) << "cosine halfway";
  EXPECT_NEAR(s.at(110), 0.0, 1e-12);
  s.kind = "linear";
  EXPECT_NEAR(s.at(60), 1.0, 1e-12);
  EXPECT_NEAR(s.at(35), 1.5, 1e-12);
  s.kind = "constant";
  EXPECT_DOUBLE_EQ(s.at(100), 2.0);
  s.kind = "exponential";
  EXPECT_THROW(s.at(50), UsageError);
  EXPECT_EQ(warmup_steps_from_ratio(0.01, 1234), 13);
  EXPECT_EQ(warmup_steps_from_ratio(0.0, 1234), 0);
}

TEST(AdamW, Bf16GradientsAccumulateInFp32) {
  auto bf16 = make_params(7, at::kBFloat16), fp32 = make_params(7);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < 2; ++i) fp32[i].copy_(bf16[i]);
  }
  AdamW ours({{"g", {{"w", bf16[0]}, {"b", bf16[1]}}, 1.0, false}}, {});
  torch::optim::AdamW oracle(fp32, torch::optim::AdamWOptions(1e-3).weight_decay(0.0));
  std::vector<at::Tensor> sums{at::zeros({5, 3}), at::zeros({3})};
  for (int micro = 0; micro < 16; ++micro) {
    set_grads(bf16, micro);
    for (size_t i = 0; i < 2; ++i) sums[i] += bf16[i].grad().to(at::kFloat);
    ours.accumulate_grads();
    EXPECT_FALSE(bf16[0].grad().defined()) << "moved into the fp32 sum";
  }
  for (size_t i = 0; i < 2; ++i) fp32[i].mutable_grad() = sums[i];
  EXPECT_NEAR(ours.grad_norm(), at::stack({sums[0].norm(), sums[1].norm()}).norm().item<double>(), 1e-5);
  ours.step(1e-3);
  oracle.step();
  std::map<std::string, at::Tensor> state;
  for (auto& [k, v] : ours.state()) state[k] = v;
  EXPECT_TRUE(at::allclose(state["master.w"], fp32[0], 1e-6, 1e-7)) << "the update saw the fp32 sum";
  EXPECT_EQ(ours.gradients().size(), 2u);
  ours.zero_grad();
  EXPECT_TRUE(ours.gradients().empty());
}

TEST(AdamW, WithoutFp32SumsMicroBatchGradientsStayInTheParameterDtype) {
  auto params = make_params(6, at::kBFloat16);
  AdamWOptions o;
  o.fp32_grad_accumulation = false;
  AdamW opt({{"g", {{"w", params[0]}}, 1.0, false}}, o);
  set_grads(params, 0);
  const at::Tensor grad = params[0].grad();
  opt.accumulate_grads();
  ASSERT_TRUE(params[0].grad().defined()) << "left where autograd sums the next micro-batch";
  EXPECT_TRUE(params[0].grad().is_same(grad));
  EXPECT_EQ(opt.gradients()[0].scalar_type(), at::kBFloat16);
  o.fp32_grad_accumulation = true;
  AdamW summing({{"g", {{"w", params[0]}}, 1.0, false}}, o);
  summing.accumulate_grads();
  EXPECT_FALSE(params[0].grad().defined()) << "moved into the fp32 sum";
  EXPECT_EQ(summing.gradients()[0].scalar_type(), at::kFloat);
}

TEST(AdamW, WithoutMastersTheStateStaysInTheParameterDtype) {
  auto params = make_params(6, at::kBFloat16);
  AdamWOptions o;
  o.fp32_master = false;
  AdamW opt({{"g", {{"w", params[0]}}, 1.0, false}}, o);
  set_grads(params, 0);
  const at::Tensor before = params[0].clone();
  opt.step(1e-2);
  const auto state = opt.state();
  ASSERT_EQ(state.size(), 2u) << "no master";
  EXPECT_EQ(state[0].second.scalar_type(), at::kBFloat16);
  EXPECT_FALSE(params[0].equal(before));
}

// Two tiny Qwen2s, a batch of 2 with 100 encoder and 120 decoder tokens.
MemoryEstimateInput tiny_estimate_input() {
  MemoryEstimateInput in;
  in.config.encoder = Qwen2Config::preset("tiny");
  in.config.decoder = Qwen2Config::preset("tiny");
  in.config.latent_tokens = 4;
  in.batch = 2, in.encoder_tokens = 100, in.decoder_tokens = 120;
  return in;
}

TEST(MemoryEstimate, CountsStateAndActivationsAsDocumented) {
  MemoryEstimateInput in = tiny_estimate_input();
  const double p = static_cast<double>(in.config.parameter_count());
  const auto m = estimate_training_memory(in);
  EXPECT_DOUBLE_EQ(m.weights, 2 * p);
  EXPECT_DOUBLE_EQ(m.gradients, 2 * p);
  in.fp32_grad_accumulation = true;
  EXPECT_DOUBLE_EQ(estimate_training_memory(in).gradients, 4 * p + 2 * p) << "fp32 sums + one micro-batch's bf16";
  in.fp32_grad_accumulation = false;
  EXPECT_DOUBLE_EQ(m.master, 4 * p);
  EXPECT_DOUBLE_EQ(m.moments, 8 * p);
  EXPECT_DOUBLE_EQ(m.logits, 2.0 * 120 * 512 * (2 + 4 + 4)) << "240 supervised rows fit one chunk";
  in.optimizer_shards = 4, in.ranks = 4;
  const auto zero1 = estimate_training_memory(in);
  EXPECT_DOUBLE_EQ(zero1.moments, 2 * p);
  EXPECT_DOUBLE_EQ(zero1.master, 1 * p);
  EXPECT_DOUBLE_EQ(zero1.gradients, 2 * p + kBucketsInFlight * static_cast<double>(kBucketBytes))
      << "ZeRO-1 keeps full gradients, and the all-reduce's buckets in flight";
  EXPECT_DOUBLE_EQ(zero1.weights, m.weights) << "and full weights";
  in.gradient_shards = 4;
  const double buckets = (kBucketsInFlight + 4) * static_cast<double>(kBucketBytes);  // in flight, filling per owner
  EXPECT_DOUBLE_EQ(estimate_training_memory(in).gradients, 0.5 * p + buckets) << "ZeRO-2 shards them";
  in.fp32_grad_accumulation = true;
  const double fp32_buckets = (2 * kBucketsInFlight + 4) * static_cast<double>(kBucketBytes);  // in flight in fp32
  EXPECT_DOUBLE_EQ(estimate_training_memory(in).gradients, 1 * p + fp32_buckets + 1 * p)
      << "its own gradients arrive summed in fp32, beside the fp32 sums";
  in.fp32_grad_accumulation = false;
  // The reference: the ZeRO paper's 2 + (2 + 12) / N bytes per parameter, recomputed activations,
  // unchunked logits.
  const auto ref = estimate_deepspeed_zero2_memory(in, 4);
  const double h = in.config.decoder.hidden_size;
  EXPECT_DOUBLE_EQ(ref.weights + ref.gradients + ref.master + ref.moments, (2 + 18.0 / 4) * p + 2 * h * h * 2)
      << "2 + (2 bf16 gradients + 4 their fp32 copy + 12 optimizer) / N, and two reduce buffers";
  EXPECT_DOUBLE_EQ(ref.logits, 2.0 * 120 * 512 * (2 + 4 + 4));
  in.optimizer_shards = in.gradient_shards = 1, in.recompute = false;
  EXPECT_GT(estimate_training_memory(in).activations, m.activations);
  in.fused_attention = false;
  EXPECT_GT(estimate_training_memory(in).activations,
            estimate_training_memory({in.config, 2, 100, 120, 2, true, false, false, true}).activations);
  in.weight_bytes = 4;
  EXPECT_DOUBLE_EQ(estimate_training_memory(in).master, 0.0) << "fp32 training needs no master copy";
}

TEST(MemoryEstimate, OnlyWhatTrainsHasGradientsMastersAndMoments) {
  MemoryEstimateInput in = tiny_estimate_input();
  const double p = static_cast<double>(in.config.parameter_count());
  in.trainable_parameters = 1000, in.adapter_parameters = 600;  // a frozen decoder, LoRA on the encoder
  const auto m = estimate_training_memory(in);
  EXPECT_DOUBLE_EQ(m.weights, 2 * (p + 600)) << "every weight is held, the adapters' too";
  EXPECT_DOUBLE_EQ(m.gradients, 2 * 1000.0);
  EXPECT_DOUBLE_EQ(m.master, 4 * 1000.0);
  EXPECT_DOUBLE_EQ(m.moments, 8 * 1000.0);
}

}  // namespace
}  // namespace c3
