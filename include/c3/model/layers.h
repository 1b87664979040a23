// Linear and Embedding whose parameters are allocated directly with the requested dtype and
// device and left uninitialised: a checkpoint load or init_weights fills them. (torch::nn's
// versions allocate fp32 on the CPU and run Kaiming init first, which costs 2x the fp32 model in
// memory and time for weights that are immediately overwritten.)
#pragma once

#include <torch/torch.h>

#include "c3/model/int8_weight.h"

namespace c3 {

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias, const at::TensorOptions& options);
  // x @ weight^T + bias, plus the LoRA path when the layer has an adapter (c3/model/lora.h).
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;  // [out, in], as HF stores it
  at::Tensor bias;    // [out] or undefined

  // LoRA (PEFT's names): lora_A [rank, in], lora_B [out, rank], both without bias; null without
  // an adapter. In training mode x goes through dropout(lora_dropout) on the LoRA path only.
  std::shared_ptr<LinearImpl> lora_A, lora_B;
  double lora_scale = 0;  // alpha / rank
  double lora_dropout = 0;

  // Weight-only int8 for decoding (Int8Weight): forward uses it for up to Int8Weight::kMaxRows
  // fp32 rows on the CPU while no gradient is recorded and the layer has no LoRA path; otherwise,
  // or once the weight changes, the float weight as before.
  void quantize_int8() { int8 = Int8Weight::quantize(weight); }
  Int8Weight int8;
};
TORCH_MODULE(Linear);

// Linear layers that read the same input (q, k and v; gate and up) run as one GEMM: a batch-1
// decoding step is a chain of small GEMMs, each paying a dispatch and a thread fork-join. fuse()
// concatenates the parts' weights and makes each part's weight (and bias) a view into the result,
// so the fused weight costs no memory and is always what the parts hold (loading into a part
// writes it). forward() is the parts' outputs side by side, bit-identical to running them one by one.
// It applies only while no gradient is recorded and the parts still alias it: moving the model to
// another device or dtype, replacing a weight, or adding LoRA ends it (usable() turns false).
class FusedLinear {
 public:
  // Fuses when every part has the same input size, device and dtype, all or none have a bias,
  // and none has LoRA or an int8 copy (Int8Weight); returns whether it did.
  bool fuse(const std::vector<Linear>& parts);
  bool usable() const;
  at::Tensor forward(const at::Tensor& x) const;  // [..., sum of the parts' outputs]

 private:
  std::vector<Linear> parts_;
  std::vector<const void*> weight_at_;  // where each part's weight starts in weight_
  at::Tensor weight_, bias_;
};

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t dim, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& ids);
  at::Tensor weight;  // [num_embeddings, dim]
};
TORCH_MODULE(Embedding);

}  // namespace c3
