#include "c3/model/int8_weight.h"

#include <gtest/gtest.h>

#include "c3/model/layers.h"
#include "c3/model/qwen2.h"
#include "test_support.h"

namespace c3 {
namespace {

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>() /
         want.to(torch::kDouble).abs().max().item<double>();
}

TEST(Int8Weight, EachRowIsRoundedToNearestOnItsOwnScale) {
  torch::manual_seed(1);
  auto w = torch::randn({6, 40});
  w[2].mul_(100);
  w[4].zero_();
  const Int8Weight q = Int8Weight::quantize(w);
  const torch::Tensor d = q.dequantized();
  const torch::Tensor step = w.abs().amax(1, /*keepdim=*/true) / 127;  // each row's scale
  EXPECT_TRUE(((d - w).abs() <= step / 2 * (1 + 1e-5)).all().item<bool>());
  EXPECT_TRUE(torch::equal(d[4], torch::zeros({40}))) << "an all-zero row";
  // Each row's largest magnitude is +-127 steps, exactly the row's peak.
  EXPECT_LT(rel_err(d.abs().amax(1), w.abs().amax(1)), 1e-6);
}

// Both kernels (AVX-512 where the CPU has it, and the portable one) compute x @ dequantized^T +
// bias, for widths with and without a remainder of 16, output counts with and without one of 4,
// and enough outputs to be split across threads.
class Int8Kernels : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    Int8Weight::force_portable_kernel(GetParam());
    if (!GetParam() && Int8Weight::kernel() != "avx512") GTEST_SKIP() << "this CPU has no AVX-512";
  }
  void TearDown() override { Int8Weight::force_portable_kernel(false); }
};

TEST_P(Int8Kernels, LinearIsTheProductWithTheDequantizedWeights) {
  torch::manual_seed(2);
  for (int64_t in : {64, 70, 576})
    for (int64_t out : {37, 300})
      for (int64_t rows : {1, 2}) {
        SCOPED_TRACE("in " + std::to_string(in) + ", out " + std::to_string(out) + ", rows " + std::to_string(rows));
        const auto w = torch::randn({out, in}), bias = torch::randn({out});
        const Int8Weight q = Int8Weight::quantize(w);
        const auto x = torch::randn({rows, 1, in});
        ASSERT_TRUE(q.accepts(x));
        const torch::Tensor got = q.linear(x, bias);
        const torch::Tensor want =
            x.to(torch::kDouble).matmul(q.dequantized().to(torch::kDouble).t()) + bias.to(torch::kDouble);
        EXPECT_EQ(got.sizes(), torch::IntArrayRef({rows, 1, out}));
        EXPECT_LT(rel_err(got, want), 1e-5);
      }
}

INSTANTIATE_TEST_SUITE_P(Kernels, Int8Kernels, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "portable" : "native"; });

TEST(Int8Weight, ALinearUsesItForFewRowsWithoutGradientsUntilItsWeightChanges) {
  torch::manual_seed(3);
  Linear l(16, 8, true, torch::TensorOptions());
  torch::NoGradGuard no_grad;
  l->weight.normal_(), l->bias.normal_();
  l->quantize_int8();
  const auto one = torch::randn({1, 16}), many = torch::randn({Int8Weight::kMaxRows + 1, 16});
  const auto int8 = l->int8.linear(one, l->bias), float_path = at::linear(one, l->weight, l->bias);
  ASSERT_FALSE(torch::equal(int8, float_path)) << "the two paths round differently";
  EXPECT_TRUE(torch::equal(l(one), int8));
  EXPECT_TRUE(torch::equal(l(many), at::linear(many, l->weight, l->bias))) << "past kMaxRows rows: the float weight";
  {
    torch::AutoGradMode grad(true);
    EXPECT_TRUE(torch::equal(l(one).detach(), float_path)) << "training: the float weight";
  }
  l->weight.mul_(2);  // as an optimizer step or a load would
  EXPECT_FALSE(l->int8.accepts(one));
  EXPECT_TRUE(torch::equal(l(one), at::linear(one, l->weight, l->bias)));
}

TEST(Int8Weight, AModelDecodesStepsWithItAndPrefillsWithTheFloatWeights) {
  torch::manual_seed(4);
  Qwen2ForCausalLM m(test::tiny_config(true));
  m->init_weights(5);
  torch::NoGradGuard no_grad;
  const auto ids = torch::randint(0, m->config().vocab_size, {1, 12}, torch::kLong);
  auto run = [&] {
    KVCache cache;
    const auto prompt = m->logits(m->prefill(m->embed(ids), cache));
    return std::make_pair(prompt, m->logits(m->step(m->embed(ids.narrow(1, 0, 1)), cache)));
  };
  const auto [prompt, step] = run();
  EXPECT_EQ(m->quantize_int8(), 7 * m->config().num_hidden_layers + 1) << "7 projections a layer, and the output";
  const auto [prompt8, step8] = run();
  EXPECT_TRUE(torch::equal(prompt8, prompt)) << "12 rows: the float weights";
  EXPECT_FALSE(torch::equal(step8, step));
  EXPECT_LT(rel_err(step8, step), 0.02);
}

}  // namespace
}  // namespace c3
