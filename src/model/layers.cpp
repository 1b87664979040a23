#include "c3/model/layers.h"

namespace c3 {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool has_bias, const at::TensorOptions& options) {
  weight = register_parameter("weight", at::empty({out_features, in_features}, options));
  if (has_bias) bias = register_parameter("bias", at::empty({out_features}, options));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::linear(x, weight, bias);
  if (!lora_A) return y;
  const at::Tensor h = lora_dropout > 0 && is_training() ? at::dropout(x, lora_dropout, /*train=*/true) : x;
  return y + lora_B->forward(lora_A->forward(h)) * lora_scale;  // PEFT's order: B(A(x)) * scaling
}

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t dim, const at::TensorOptions& options) {
  weight = register_parameter("weight", at::empty({num_embeddings, dim}, options));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) { return at::embedding(weight, ids); }

}  // namespace c3
