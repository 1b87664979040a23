// Where a process learns its place among processes started together: the one reader of the
// launchers' environment variables (training ranks, and compress/reconstruct's default --shard).
#pragma once

#include <string>

namespace c3 {

// The variable's value, or null when it is unset or empty.
const char* env_value(const char* name);
// A non-negative integer variable, `fallback` when unset; anything else is a UsageError naming it.
int env_int(const char* name, int fallback);

struct LaunchRank {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string source = "none";  // "torchrun", "slurm" or "none"
};

// torchrun (RANK, WORLD_SIZE, LOCAL_RANK) when RANK or WORLD_SIZE is set, else SLURM
// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) when it started more than one task, else one process.
// A rank not below the world size is a UsageError.
LaunchRank launch_rank_from_env();

}  // namespace c3
