// The one place where dtype names and the "auto" rule live.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>
#include <vector>

namespace c3 {

at::ScalarType scalar_type_from_name(const std::string& name);  // "bfloat16"/"bf16" -> kBFloat16
std::string scalar_type_name(at::ScalarType type);              // kBFloat16 -> "bfloat16"

// A dtype option's value: "auto" is bfloat16 on CUDA (tensor cores, half the memory) and float32
// on the CPU, where bf16 rounds more and was measured slower: on this project's AVX512-BF16 CPU
// without AMX, LibTorch's bf16 matmul runs at 0.57x fp32 and a batch-1 bf16 GEMV streams weights
// at 14 GB/s against fp32's 26 (bench/vs_llamacpp.py); else the name.
at::ScalarType resolve_dtype(const std::string& name, const c10::Device& device);

// The values a dtype option accepts, and its help text's explanation of "auto".
const std::vector<std::string>& dtype_choices();
inline constexpr const char* kAutoDtypeHelp = "auto: bfloat16 on CUDA, float32 on CPU";

}  // namespace c3
