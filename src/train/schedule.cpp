#include "c3/train/schedule.h"

#include <algorithm>
#include <cmath>

#include "c3/util/error.h"

namespace c3 {

double LrSchedule::factor(int64_t step) const {
  if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (kind == "constant") return 1.0;
  const double progress =
      static_cast<double>(step - warmup_steps) / static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  if (kind == "linear") return std::max(0.0, 1.0 - progress);
  if (kind == "cosine") return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  throw UsageError("unknown learning-rate schedule '" + kind + "' (choose cosine, linear or constant)");
}

int64_t warmup_steps_from_ratio(double ratio, int64_t total_steps) {
  return static_cast<int64_t>(std::ceil(ratio * static_cast<double>(total_steps)));
}

}  // namespace c3
