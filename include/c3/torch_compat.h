// Every difference between LibTorch versions lives here, so the rest of c3 reads the same against
// Debian's 1.13 (CPU) and LibTorch 2.x (CUDA). Nothing else in c3 tests TORCH_VERSION_*.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <limits>
#include <string>

#define C3_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace c3::compat {

inline std::string torch_version() { return TORCH_VERSION; }

// Whether attention() runs a fused kernel (no [heads, T, S] score tensor kept for backward).
inline constexpr bool kFusedAttention = C3_TORCH_AT_LEAST(2, 1);

// Softmax attention with HF Qwen2's numerics: scores * scale, fp32 softmax, cast back.
//   q: [B, H, T, D]; k, v: [B, KV, S, D] with H a multiple of KV (grouped-query attention: query
//   head j reads kv head j / (H / KV), i.e. repeat-interleave).
//   allowed: bool [B or 1, 1, T, S], true where a query may attend; undefined for "no mask".
//   causal: top-left aligned causal mask (only meaningful when T == S and `allowed` is undefined).
// Every query row must allow at least one key (the caller guarantees it), so no row is all -inf.
inline at::Tensor attention(const at::Tensor& q, at::Tensor k, at::Tensor v, const at::Tensor& allowed,
                            bool causal, double scale) {
  // Fused scaled_dot_product_attention with a `scale` argument exists from 2.1 (flash backend from
  // 2.2), its enable_gqa (which maps heads as repeat-interleave does) from 2.5; 1.13 has neither.
  const int64_t groups = q.size(1) / k.size(1);
  if (groups > 1 && !C3_TORCH_AT_LEAST(2, 5)) {  // HF's repeat_kv
    k = k.repeat_interleave(groups, 1);
    v = v.repeat_interleave(groups, 1);
  }
#if C3_TORCH_AT_LEAST(2, 1)
  c10::optional<at::Tensor> mask;
  if (allowed.defined()) mask = allowed;
  const bool is_causal = causal && !allowed.defined();
#if C3_TORCH_AT_LEAST(2, 5)
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal, scale, /*enable_gqa=*/groups > 1);
#else
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal, scale);
#endif
#else
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;
  at::Tensor mask = allowed;
  if (!mask.defined() && causal) {
    const int64_t t = q.size(2), s = k.size(2);
    mask = at::ones({t, s}, q.options().dtype(at::kBool)).tril(s - t);
  }
  if (mask.defined()) {
    scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  }
  at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  return at::matmul(probs, v);
#endif
}

}  // namespace c3::compat
