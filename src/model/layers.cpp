#include "c3/model/layers.h"

namespace c3 {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool has_bias, const at::TensorOptions& options) {
  weight = register_parameter("weight", at::empty({out_features, in_features}, options));
  if (has_bias) bias = register_parameter("bias", at::empty({out_features}, options));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  if (!lora_A && !at::GradMode::is_enabled() && int8.accepts(x)) return int8.linear(x, bias);
  at::Tensor y = at::linear(x, weight, bias);
  if (!lora_A) return y;
  const at::Tensor h = lora_dropout > 0 && is_training() ? at::dropout(x, lora_dropout, /*train=*/true) : x;
  return y + lora_B->forward(lora_A->forward(h)) * lora_scale;  // PEFT's order: B(A(x)) * scaling
}

namespace {

// `part` becomes a view of rows [row, row + part.size(0)) of `whole` (same trailing shape).
void alias_rows(const at::Tensor& part, const at::Tensor& whole, int64_t row) {
  const int64_t width = part.dim() == 2 ? part.size(1) : 1;
  part.set_(whole.storage(), whole.storage_offset() + row * width, part.sizes(), part.strides());
}

}  // namespace

bool FusedLinear::fuse(const std::vector<Linear>& parts) {
  *this = FusedLinear();
  if (parts.size() < 2) return false;
  const at::Tensor& first = parts[0]->weight;
  std::vector<at::Tensor> weights, biases;
  for (const auto& p : parts) {
    if (p->lora_A || p->int8.defined() || !p->weight.is_contiguous() || p->weight.size(1) != first.size(1) ||
        p->weight.device() != first.device() || p->weight.scalar_type() != first.scalar_type() ||
        p->bias.defined() != parts[0]->bias.defined())
      return false;
    weights.push_back(p->weight);
    if (p->bias.defined()) biases.push_back(p->bias);
  }
  torch::NoGradGuard no_grad;  // set_ on a parameter
  weight_ = at::cat(weights, 0);
  if (!biases.empty()) bias_ = at::cat(biases, 0);
  int64_t row = 0;
  for (const auto& p : parts) {
    alias_rows(p->weight, weight_, row);
    if (p->bias.defined()) alias_rows(p->bias, bias_, row);
    weight_at_.push_back(p->weight.data_ptr());
    row += p->weight.size(0);
  }
  parts_ = parts;
  return true;
}

bool FusedLinear::usable() const {
  if (!weight_.defined() || at::GradMode::is_enabled()) return false;
  for (size_t i = 0; i < parts_.size(); ++i)
    if (parts_[i]->lora_A || parts_[i]->int8.defined() || parts_[i]->weight.data_ptr() != weight_at_[i]) return false;
  return true;
}

at::Tensor FusedLinear::forward(const at::Tensor& x) const { return at::linear(x, weight_, bias_); }

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t dim, const at::TensorOptions& options) {
  weight = register_parameter("weight", at::empty({num_embeddings, dim}, options));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) { return at::embedding(weight, ids); }

}  // namespace c3
