#include "c3/model/projector_init.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <stdexcept>

namespace c3 {
namespace {

// [out, in] with orthonormal columns (out >= in) or rows (out < in).
at::Tensor semi_orthogonal(int64_t out, int64_t in, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor draw = at::normal(0.0, 1.0, {std::max(out, in), std::min(out, in)}, gen).to(at::kDouble);
  const at::Tensor q = std::get<0>(at::linalg_qr(draw));
  return out >= in ? q : q.t();
}

// I - U U^T, U an orthonormal basis of the rows of `directions` [N, in] (those that are not ~0).
at::Tensor projection_away_from(const at::Tensor& directions) {
  const auto [u, sv, vh] = at::linalg_svd(directions.t(), /*full_matrices=*/false);
  const double largest = sv.numel() > 0 ? sv.max().item<double>() : 0.0;
  const at::Tensor basis = u.index({at::indexing::Slice(), sv.gt(1e-9 * largest)});
  return at::eye(directions.size(1), directions.options()) - basis.matmul(basis.t());
}

}  // namespace

ProjectorWeights whitening_projector(const at::Tensor& states, int64_t out_features, double target_norm, uint64_t seed,
                                     double shrinkage) {
  if (states.dim() != 3 || states.size(0) < 2)
    throw std::invalid_argument("whitening_projector: states must be [M >= 2 spans, N, hidden]");
  const at::Tensor x = states.detach().to(at::kCPU, at::kDouble);
  const int64_t in = x.size(2);
  const at::Tensor slot_mean = x.mean(0);     // [N, in]
  const at::Tensor mean = slot_mean.mean(0);  // [in]
  const at::Tensor within = (x - slot_mean).reshape({-1, in});
  const at::Tensor covariance = within.t().matmul(within) / static_cast<double>(within.size(0));
  const auto [eigenvalues, eigenvectors] = at::linalg_eigh(covariance);
  const double largest = eigenvalues.max().item<double>();
  if (!(largest > 0)) throw std::invalid_argument("whitening_projector: the states do not vary between spans");
  const at::Tensor variances = eigenvalues.clamp_min(1e-12 * largest);  // fewer spans than dims: some are 0
  const at::Tensor scale = (variances + shrinkage * variances.mean()).rsqrt();
  const at::Tensor whiten = eigenvectors.matmul(at::diag(scale)).matmul(eigenvectors.t());
  // Whitened, the slot means are directions too; projecting them out leaves the rest white.
  at::Tensor weight = projection_away_from((slot_mean - mean).matmul(whiten)).matmul(whiten);
  if (out_features != in) weight = semi_orthogonal(out_features, in, seed).matmul(weight);
  const double norm = (x - mean).matmul(weight.t()).norm(2, -1).mean().item<double>();
  weight = weight * (target_norm / norm);
  const at::Tensor bias = -weight.matmul(mean);
  return {weight.to(at::kFloat).contiguous(), bias.to(at::kFloat).contiguous()};
}

}  // namespace c3
