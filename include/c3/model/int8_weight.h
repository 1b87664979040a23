// Weight-only int8 for decoding on the CPU. A batch-1 decoding step streams every weight once, so
// its speed is weight bytes / memory bandwidth: int8 weights stream 4x fewer bytes than fp32. Each
// output row is scaled to [-127, 127] on its own (symmetric, per channel); activations stay fp32,
// and the products are summed in fp32 from the int8 values.
#pragma once

#include <torch/torch.h>

namespace c3 {

class Int8Weight {
 public:
  // Rows a call may have for the int8 kernel. It widens each weight to fp32 again for every row,
  // so past a few rows it is bound by that arithmetic and a float GEMM (which reads each weight
  // once for all rows) is faster: at 2 threads here an int8 GEMV of SmolLM2's projections took 0.4x
  // the fp32 time at 1 row, about the same at 3. More rows use the float weight.
  static constexpr int64_t kMaxRows = 2;

  Int8Weight() = default;
  // weight: float [out, in] on the CPU. The int8 copy answers for it only while it holds the same
  // values: an in-place change (an optimizer step, a load) or a move to another dtype or device
  // makes accepts() false, and callers fall back to the float weight.
  static Int8Weight quantize(const at::Tensor& weight);

  bool defined() const { return values_.defined(); }
  // Whether linear() takes x (fp32 on the CPU, at most kMaxRows rows) and the copy is current.
  bool accepts(const at::Tensor& x) const;
  // x [..., in] -> x @ (scale * values)^T + bias, [..., out] fp32. bias: [out] or undefined.
  at::Tensor linear(const at::Tensor& x, const at::Tensor& bias = {}) const;
  at::Tensor dequantized() const;  // fp32 [out, in]: scale * values

  // The kernel linear() runs: "avx512" where the CPU has AVX-512, else "portable". Tests force
  // the portable one to check both.
  static std::string kernel();
  static void force_portable_kernel(bool on);

 private:
  at::Tensor values_;  // int8 [out, in]
  at::Tensor scales_;  // fp32 [out]
  at::Tensor source_;  // the float weight quantized (the same tensor, not a copy)
  uint32_t source_version_ = 0;
  const void* source_data_ = nullptr;
};

}  // namespace c3
