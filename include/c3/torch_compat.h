// Every dependence on the LibTorch version lives here, so the rest of c3 reads the same against
// every LibTorch it supports (2.5 and newer; CMake refuses older ones). Nothing else in c3 tests
// TORCH_VERSION_*.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#define C3_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

static_assert(C3_TORCH_AT_LEAST(2, 5), "c3 needs LibTorch 2.5 or newer (scaled_dot_product_attention with enable_gqa)");

namespace c3::compat {

inline std::string torch_version() { return TORCH_VERSION; }

// Softmax attention with HF Qwen2's numerics through the fused kernel (no [heads, T, S] score
// tensor kept for backward): scores * scale, softmax, weighted sum of values.
//   q: [B, H, T, D]; k, v: [B, KV, S, D] with H a multiple of KV (grouped-query attention: query
//   head j reads kv head j / (H / KV), which is what enable_gqa does, as HF's repeat_kv).
//   allowed: bool [B or 1, 1, T, S], true where a query may attend; undefined for "no mask".
//   causal: top-left aligned causal mask (only meaningful when T == S and `allowed` is undefined).
// Every query row must allow at least one key (the caller guarantees it), so no row is all -inf.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                            bool causal, double scale) {
  std::optional<at::Tensor> mask;
  if (allowed.defined()) mask = allowed;
  const bool is_causal = causal && !allowed.defined();
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal, scale, /*enable_gqa=*/q.size(1) != k.size(1));
}

}  // namespace c3::compat
