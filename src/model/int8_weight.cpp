#include "c3/model/int8_weight.h"

#include <ATen/Parallel.h>

#include <atomic>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "c3/util/error.h"

namespace c3 {
namespace {

std::atomic<bool> portable_only{false};

// y[r, o] = scale[o] * sum_i w[o, i] * x[r, i] for outputs [begin, end). Sixteen partial sums per
// row keep the loop vectorisable without reassociating one sum.
void gemv_portable(const float* x, int64_t rows, int64_t in, const int8_t* w, const float* scale, int64_t out,
                   int64_t begin, int64_t end, float* y) {
  for (int64_t o = begin; o < end; ++o) {
    const int8_t* row = w + o * in;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float acc[16] = {};
      int64_t i = 0;
      for (; i + 16 <= in; i += 16)
        for (int l = 0; l < 16; ++l) acc[l] += static_cast<float>(row[i + l]) * xr[i + l];
      float sum = 0;
      for (int l = 0; l < 16; ++l) sum += acc[l];
      for (; i < in; ++i) sum += static_cast<float>(row[i]) * xr[i];
      y[r * out + o] = sum * scale[o];
    }
  }
}

#if defined(__x86_64__)
// y[r, o..o+K) for K output rows at once: one activation load serves K weight rows, and K rows
// stream from memory side by side (one stream at a time reads memory at half the speed).
template <int K>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void dot_rows(const float* xr, int64_t in, const int8_t* rows,
                                                                   const float* scale, float* y) {
  __m512 acc[K];
  for (int k = 0; k < K; ++k) acc[k] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= in; i += 16) {
    const __m512 xv = _mm512_loadu_ps(xr + i);
    for (int k = 0; k < K; ++k) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + k * in + i));
      acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)), xv, acc[k]);
    }
  }
  for (int k = 0; k < K; ++k) {
    float sum = _mm512_reduce_add_ps(acc[k]);
    for (int64_t j = i; j < in; ++j) sum += static_cast<float>(rows[k * in + j]) * xr[j];  // the last in % 16
    y[k] = sum * scale[k];
  }
}

// As gemv_portable, 16 lanes at a time, four output rows at once.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void gemv_avx512(const float* x, int64_t rows, int64_t in,
                                                                      const int8_t* w, const float* scale, int64_t out,
                                                                      int64_t begin, int64_t end, float* y) {
  float part[4];
  int64_t o = begin;
  for (; o + 4 <= end; o += 4)
    for (int64_t r = 0; r < rows; ++r) {
      dot_rows<4>(x + r * in, in, w + o * in, scale + o, part);
      for (int k = 0; k < 4; ++k) y[r * out + o + k] = part[k];
    }
  for (; o < end; ++o)
    for (int64_t r = 0; r < rows; ++r) dot_rows<1>(x + r * in, in, w + o * in, scale + o, y + r * out + o);
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return yes;
}
#endif

}  // namespace

Int8Weight Int8Weight::quantize(const at::Tensor& weight) {
  if (weight.dim() != 2 || !weight.is_cpu() || !weight.is_floating_point())
    throw Error("int8 quantization takes a float [out, in] weight on the CPU");
  const at::Tensor w = weight.detach().to(at::kFloat);
  Int8Weight q;
  // Per-row scale max|w| / 127; an all-zero row keeps scale 1 (its values are 0 either way).
  const at::Tensor peak = w.abs().amax(1);
  q.scales_ = at::where(peak > 0, peak / 127.0, at::ones_like(peak)).contiguous();
  q.values_ = (w / q.scales_.unsqueeze(1)).round().clamp(-127, 127).to(at::kChar).contiguous();
  q.source_ = weight;
  q.source_version_ = weight._version();
  q.source_data_ = weight.data_ptr();
  return q;
}

bool Int8Weight::accepts(const at::Tensor& x) const {
  return defined() && source_._version() == source_version_ && source_.data_ptr() == source_data_ && x.is_cpu() &&
         x.scalar_type() == at::kFloat && x.size(-1) == values_.size(1) && x.numel() / values_.size(1) <= kMaxRows;
}

at::Tensor Int8Weight::linear(const at::Tensor& x, const at::Tensor& bias) const {
  if (!accepts(x)) throw Error("Int8Weight::linear: x must be fp32 on the CPU, [..., in] with at most kMaxRows rows");
  const int64_t in = values_.size(1), out = values_.size(0), rows = x.numel() / in;
  const at::Tensor x2 = x.reshape({rows, in}).contiguous();
  at::Tensor y = at::empty({rows, out}, x.options());
  const float* xp = x2.data_ptr<float>();
  const int8_t* wp = values_.data_ptr<int8_t>();
  const float* sp = scales_.data_ptr<float>();
  float* yp = y.data_ptr<float>();
#if defined(__x86_64__)
  const bool avx512 = has_avx512() && !portable_only.load();
#else
  const bool avx512 = false;
#endif
  at::parallel_for(0, out, 64, [&](int64_t begin, int64_t end) {
#if defined(__x86_64__)
    if (avx512) return gemv_avx512(xp, rows, in, wp, sp, out, begin, end, yp);
#endif
    gemv_portable(xp, rows, in, wp, sp, out, begin, end, yp);
  });
  if (bias.defined()) y.add_(bias.to(at::kFloat));
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  return y.view(shape);
}

at::Tensor Int8Weight::dequantized() const { return values_.to(at::kFloat) * scales_.unsqueeze(1); }

std::string Int8Weight::kernel() {
#if defined(__x86_64__)
  if (has_avx512() && !portable_only.load()) return "avx512";
#endif
  return "portable";
}

void Int8Weight::force_portable_kernel(bool on) { portable_only.store(on); }

}  // namespace c3
