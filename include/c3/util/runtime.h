// Process-wide settings: logging, CPU threads, device choice.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace c3 {

// level: trace|debug|info|warn|error|off. log_file: "" for none; else also appended there.
void configure_logging(const std::string& level, const std::string& log_file);

// Sets LibTorch's intra-op threads (OpenMP; MKL runs on the same pool) to `requested` (0 = all
// cores). libgomp's default wait policy (idle workers spin a while) is left alone: on 2 cores it
// ran the tiny model's training step 1.3-1.5x and its cached decoding ~5x faster than
// OMP_WAIT_POLICY=PASSIVE (bench_qwen2_forward shows both). Returns the count.
int configure_threads(int requested);

// glibc hands blocks above its mmap threshold back to the OS as soon as they are freed, so each
// training step on the CPU page-faults its activations in again. This keeps blocks up to 32 MiB in
// the heap and trims it only beyond 1 GiB free (the tiny model's step ran 1.2-1.4x faster; no
// change at 50M parameters in fp32). Leaves glibc alone when GLIBC_TUNABLES or MALLOC_* is set.
void configure_cpu_allocator();

// "cpu", "cuda" or "auto" (cuda when available). "cuda" without a GPU is a UsageError. A CUDA
// device is the local rank's (cuda_device_for_local_rank; LOCAL_RANK or SLURM_LOCALID, 0 for one
// process), made the process's current device.
c10::Device resolve_device(const std::string& name);

// One GPU per process on a node, as torchrun and SLURM start them: local rank r gets cuda:r. A
// rank with no GPU of its own is a UsageError (two processes sharing a GPU is slower, never asked).
c10::Device cuda_device_for_local_rank(int local_rank, int device_count);

bool cuda_available();
std::string blas_backend();  // LibTorch's BLAS_INFO, e.g. "MKL"

}  // namespace c3
