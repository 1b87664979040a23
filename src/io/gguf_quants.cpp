// Dequantization of ggml's block formats (ggml-quants.c's dequantize_row_*), each product and
// sum in float32 in the order gguf-py's numpy code takes (gguf/quants.py), so the values are
// bit-identical to what transformers' GGUF loader produces. Compiled with -ffp-contract=off: a
// fused multiply-add would round differently.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstring>

#include "c3/io/gguf.h"
#include "c3/util/error.h"

namespace c3::io {
namespace {

float f16(const std::uint8_t* p) {
  std::uint16_t bits;
  std::memcpy(&bits, p, 2);
  return static_cast<float>(c10::Half(bits, c10::Half::from_bits()));
}

void q8_0(const std::uint8_t* b, float* y) {
  const float d = f16(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
}

// Q4_0 / Q4_1: 16 bytes of nibbles, low nibbles are elements 0..15, high ones 16..31.
void q4_0(const std::uint8_t* b, float* y) {
  const float d = f16(b);
  const std::uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void q4_1(const std::uint8_t* b, float* y) {
  const float d = f16(b), m = f16(b + 2);
  const std::uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Q5_0 / Q5_1: a 32-bit word holds each element's fifth bit.
int q5_value(std::uint32_t qh, const std::uint8_t* qs, int e) {
  const int low = e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
  return low | static_cast<int>(((qh >> e) & 1u) << 4);
}

void q5_0(const std::uint8_t* b, float* y) {
  const float d = f16(b);
  std::uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (int e = 0; e < 32; ++e) y[e] = d * static_cast<float>(q5_value(qh, b + 6, e) - 16);
}

void q5_1(const std::uint8_t* b, float* y) {
  const float d = f16(b), m = f16(b + 2);
  std::uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  for (int e = 0; e < 32; ++e) y[e] = d * static_cast<float>(q5_value(qh, b + 8, e)) + m;
}

// The 8 six-bit scales and mins of a K-quant super-block, packed in 12 bytes (get_scale_min_k4).
void scale_min_k4(const std::uint8_t* s, int j, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63, min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K: 8 sub-blocks of 32; sub-block 2i takes the low nibbles of qs[32i..], 2i+1 the high ones.
// Q5_K adds bit i of qh[l] as each element's fifth bit.
void q45_k(const std::uint8_t* b, float* y, bool five) {
  const float d = f16(b), dmin = f16(b + 2);
  const std::uint8_t* scales = b + 4;
  const std::uint8_t* qh = b + 16;
  const std::uint8_t* qs = five ? b + 48 : b + 16;
  for (int sub = 0; sub < 8; ++sub) {
    int sc, m;
    scale_min_k4(scales, sub, sc, m);
    const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
    const std::uint8_t* q = qs + 32 * (sub / 2);
    for (int l = 0; l < 32; ++l) {
      int v = sub % 2 == 0 ? (q[l] & 0x0F) : (q[l] >> 4);
      if (five) v |= ((qh[l] >> sub) & 1) << 4;
      y[32 * sub + l] = dl * static_cast<float>(v) - ml;
    }
  }
}

// Q6_K: per half of 128, ql holds the low 4 bits (4 runs of 32), qh the high 2; 16 int8 scales.
void q6_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* ql = b;
  const std::uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = f16(b + 208);
  for (int half = 0; half < 2; ++half) {
    const std::uint8_t* l4 = ql + 64 * half;
    const std::uint8_t* h2 = qh + 32 * half;
    for (int run = 0; run < 4; ++run) {
      for (int l = 0; l < 32; ++l) {
        const int low = run < 2 ? (l4[l + 32 * run] & 0x0F) : (l4[l + 32 * (run - 2)] >> 4);
        const int high = (h2[l] >> (2 * run)) & 3;
        const int e = 128 * half + 32 * run + l;
        const float scale = d * static_cast<float>(sc[e / 16]);
        y[e] = scale * static_cast<float>((low | (high << 4)) - 32);
      }
    }
  }
}

}  // namespace

at::Tensor dequantize(const GgufTensor& t, const std::string& source) {
  if (!can_dequantize(t.type))
    fail_file(source, "tensor '" + t.name + "' is " + ggml_type_name(t.type) +
                          ", which c3 cannot dequantize (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, "
                          "Q5_K and Q6_K)");
  at::Tensor out = at::empty({t.numel()}, at::kFloat);
  float* y = out.data_ptr<float>();
  const std::uint8_t* b = t.data;
  const int64_t n = t.numel();
  switch (static_cast<GgmlType>(t.type)) {
    case GgmlType::F32:
      std::memcpy(y, b, static_cast<std::size_t>(n) * 4);
      break;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) y[i] = f16(b + 2 * i);
      break;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, b + 2 * i, 2);
        y[i] = static_cast<float>(c10::BFloat16(bits, c10::BFloat16::from_bits()));
      }
      break;
    case GgmlType::Q8_0:
      for (int64_t k = 0; k < n / 32; ++k) q8_0(b + 34 * k, y + 32 * k);
      break;
    case GgmlType::Q4_0:
      for (int64_t k = 0; k < n / 32; ++k) q4_0(b + 18 * k, y + 32 * k);
      break;
    case GgmlType::Q4_1:
      for (int64_t k = 0; k < n / 32; ++k) q4_1(b + 20 * k, y + 32 * k);
      break;
    case GgmlType::Q5_0:
      for (int64_t k = 0; k < n / 32; ++k) q5_0(b + 22 * k, y + 32 * k);
      break;
    case GgmlType::Q5_1:
      for (int64_t k = 0; k < n / 32; ++k) q5_1(b + 24 * k, y + 32 * k);
      break;
    case GgmlType::Q4_K:
      for (int64_t k = 0; k < n / 256; ++k) q45_k(b + 144 * k, y + 256 * k, false);
      break;
    case GgmlType::Q5_K:
      for (int64_t k = 0; k < n / 256; ++k) q45_k(b + 176 * k, y + 256 * k, true);
      break;
    case GgmlType::Q6_K:
      for (int64_t k = 0; k < n / 256; ++k) q6_k(b + 210 * k, y + 256 * k);
      break;
    default:
      break;  // can_dequantize said no
  }
  return out.view(t.shape);
}

}  // namespace c3::io
