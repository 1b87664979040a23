// Multi-process training: where a process learns its rank (torchrun, SLURM, or nothing), and the
// c10d-backed Communicator (Gloo on CPUs, NCCL on CUDA when LibTorch has it).
#pragma once

#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>

#include "c3/train/communicator.h"

namespace c3 {

struct DistributedEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr;  // the rendezvous host (rank 0's)
  int master_port = 29500;
  std::string source = "none";  // "torchrun", "slurm" or "none"
  // A process group: several ranks, or torchrun's one (as torch.distributed's env:// init gives
  // one, so `torchrun --nproc-per-node 1` exercises NCCL/Gloo). One SLURM task is one process.
  bool active() const { return world_size > 1 || source == "torchrun"; }
};

// torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), else SLURM (SLURM_PROCID,
// SLURM_NTASKS, SLURM_LOCALID; MASTER_ADDR or the first host of SLURM_JOB_NODELIST; MASTER_PORT or
// 29500), else one process. Inconsistent values are a UsageError naming the variable.
DistributedEnv detect_distributed_env();
// The first host of a SLURM node list: "gpu[003-005,9],cpu1" -> "gpu003".
std::string first_slurm_host(const std::string& nodelist);

// The process group's backend: "auto" (NCCL on CUDA devices, Gloo otherwise), "nccl" (CUDA only)
// or "gloo" (also with CUDA tensors: several ranks sharing one GPU, which NCCL refuses). Anything
// else, or NCCL without CUDA, is a UsageError naming train.dist_backend.
std::string choose_backend(const std::string& wanted, const c10::Device& device);

// What make_communicator sets before it creates an NCCL process group, unless the variable is set
// already (the user's choice wins): TORCH_NCCL_BLOCKING_WAIT=1. Without it NCCL's wait() only
// orders the caller's CUDA stream after the collective and returns, and a timeout or a dead peer is
// found by NCCL's watchdog thread, which aborts the process (a core dump and a page of log) instead
// of the one-line error and exit code 1 that Gloo gives. With it, wait() blocks the host until the
// collective completes or train.dist_timeout passes, and throws. The cost: the host waits for each
// gradient bucket it waits on (two are in flight) instead of queueing more backward kernels.
void set_nccl_environment();

// One process: LocalCommunicator. Several: a TCPStore rendezvous at master_addr:master_port
// (rank 0 serves it) and a c10d process group on `backend` (choose_backend's answer). A rendezvous
// or collective that does not complete within `timeout` throws c3::Error saying which.
std::unique_ptr<Communicator> make_communicator(const DistributedEnv& env, const c10::Device& device,
                                                const std::string& backend, std::chrono::milliseconds timeout);

}  // namespace c3
