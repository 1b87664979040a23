// `c3 train --dry-run`: resolves the architecture (config files only: no weights, no data) and
// prints the estimated peak memory per GPU for 1, 2, 4, 8 and `world_size` GPUs at the window's
// full length, with and without recomputation, next to DeepSpeed ZeRO-2 (the authors' setup).
#pragma once

#include <ostream>

#include "c3/train/trainer.h"

namespace c3::cli {

void print_dry_run(const TrainSettings& s, int world_size, std::ostream& out);

}  // namespace c3::cli
