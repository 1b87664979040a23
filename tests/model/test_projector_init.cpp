// model.projector_init "whiten": the projector that removes each slot's mean from the encoder's slot
// states, whitens what varies with the text and scales the latents to a target norm.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "c3/model/projector_init.h"

namespace c3 {
namespace {

// Slot states like a pretrained encoder's: a large constant per slot plus content whose spread
// differs 100x between directions (a covariance condition number of about 10^4).
at::Tensor slot_states(int64_t spans, int64_t slots, int64_t hidden) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor constants = at::normal(0.0, 20.0, {slots, hidden}, gen);
  const at::Tensor scales = at::logspace(-1, 1, hidden);
  return constants + at::normal(0.0, 1.0, {spans, slots, hidden}, gen) * scales;
}

at::Tensor latents(const at::Tensor& states, const ProjectorWeights& w) { return states.matmul(w.weight.t()) + w.bias; }

// The largest over the smallest non-zero eigenvalue of the within-slot covariance.
double condition_number(const at::Tensor& x) {
  const at::Tensor r = (x - x.mean(0)).reshape({-1, x.size(2)}).to(at::kDouble);
  const at::Tensor eigenvalues = at::linalg_eigvalsh(r.t().matmul(r) / static_cast<double>(r.size(0)));
  const at::Tensor kept = eigenvalues.masked_select(eigenvalues.gt(1e-6 * eigenvalues.max().item<double>()));
  return (kept.max() / kept.min()).item<double>();
}

TEST(ProjectorInit, LatentsHaveNoSlotMeanAndTheTargetNorm) {
  const at::Tensor states = slot_states(400, 4, 16);
  for (const int64_t out : {16, 24, 12}) {
    const ProjectorWeights w = whitening_projector(states, out, 3.0, 7);
    ASSERT_EQ(w.weight.sizes(), (at::IntArrayRef{out, 16}));
    ASSERT_EQ(w.bias.sizes(), (at::IntArrayRef{out}));
    const at::Tensor y = latents(states, w);
    EXPECT_NEAR(y.norm(2, -1).mean().item<double>(), 3.0, 1e-3) << out;
    EXPECT_LT(y.mean(0).abs().max().item<double>(), 1e-3) << "every slot's mean is removed, out " << out;
  }
  // What the authors' normal(0, 0.02) projector hands on: mostly each slot's constant.
  const at::Tensor normal = states.matmul(at::normal(0.0, 0.02, {16, 16}).t());
  EXPECT_GT(normal.mean(0).abs().max().item<double>(), 0.1);
}

TEST(ProjectorInit, WhitensWhatVariesWithTheText) {
  const at::Tensor states = slot_states(400, 4, 16);
  ASSERT_GT(condition_number(states), 5e3);
  EXPECT_LT(condition_number(latents(states, whitening_projector(states, 16, 3.0, 7, /*shrinkage=*/0.0))), 1.01);
  EXPECT_LT(condition_number(latents(states, whitening_projector(states, 24, 3.0, 7, /*shrinkage=*/0.0))), 1.01);
  // Shrinkage keeps the weakest directions from being blown up all the way, but still evens them.
  EXPECT_LT(condition_number(latents(states, whitening_projector(states, 16, 3.0, 7))), 5e2);
}

TEST(ProjectorInit, StatesThatDoNotVaryAreRefused) {
  const at::Tensor same = slot_states(1, 4, 16).expand({8, 4, 16});
  EXPECT_THROW(whitening_projector(same, 16, 3.0, 7), std::invalid_argument);
  EXPECT_THROW(whitening_projector(slot_states(1, 4, 16), 16, 3.0, 7), std::invalid_argument);
}

}  // namespace
}  // namespace c3
