#include "launcher.h"

#include <cstdlib>

#include "c3/util/error.h"

namespace c3 {

const char* env_value(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int env_int(const char* name, int fallback) {
  const char* v = env_value(name);
  if (!v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 0 || n > 1 << 30)
    throw UsageError(std::string(name) + "=" + v + ": expected a non-negative integer");
  return static_cast<int>(n);
}

LaunchRank launch_rank_from_env() {
  LaunchRank r;
  if (env_value("RANK") || env_value("WORLD_SIZE")) {
    r.source = "torchrun";
    r.rank = env_int("RANK", 0);
    r.world_size = env_int("WORLD_SIZE", 1);
    r.local_rank = env_int("LOCAL_RANK", 0);
  } else if (env_value("SLURM_PROCID") && env_int("SLURM_NTASKS", 1) > 1) {
    r.source = "slurm";
    r.rank = env_int("SLURM_PROCID", 0);
    r.world_size = env_int("SLURM_NTASKS", 1);
    r.local_rank = env_int("SLURM_LOCALID", 0);
  }
  if (r.world_size < 1) throw UsageError("WORLD_SIZE must be at least 1");
  if (r.rank >= r.world_size)
    throw UsageError("rank " + std::to_string(r.rank) + " is not below the world size " + std::to_string(r.world_size));
  return r;
}

}  // namespace c3
