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
// libgomp reads OMP_WAIT_POLICY once, when it loads, and by default its idle workers spin, which
// starves OpenBLAS's threads on the same cores (bench_qwen2_forward measures both policies).
// Unless the user set OMP_WAIT_POLICY, this re-executes the running program once with
// OMP_WAIT_POLICY=PASSIVE; it returns only when it did not re-execute.
void reexec_with_passive_openmp(char** argv);

// OpenBLAS's own pool alone (no-op when LibTorch does not run on OpenBLAS). For benchmarks.
void set_blas_threads(int n);

c10::Device resolve_device(const std::string& name);

bool cuda_available();
std::string blas_backend();  // e.g. "OpenBLAS (pthread)", "reference BLAS", or "unknown"

}  // namespace c3
