// Process-wide settings: logging, CPU threads, device choice.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace c3 {

// level: trace|debug|info|warn|error|off. log_file: "" for none; else also appended there.
void configure_logging(const std::string& level, const std::string& log_file);

// Sets LibTorch's intra-op threads to `requested` (0 = all cores) and OpenBLAS's pool to the same
// number, so the two never run side by side (OpenMP x OpenBLAS oversubscription). Returns the count.
int configure_threads(int requested);

// "cpu", "cuda" or "auto" (cuda when available). "cuda" without a GPU is a UsageError.
c10::Device resolve_device(const std::string& name);

bool cuda_available();
std::string blas_backend();  // e.g. "OpenBLAS (pthread)", "reference BLAS", or "unknown"

}  // namespace c3
