// Learning-rate schedules as Hugging Face's get_*_schedule_with_warmup define them: update k
// (0-based) uses lr * factor(k); warmup rises linearly from 0, then cosine / linear decay to 0 at
// total_steps, or constant.
#pragma once

#include <cstdint>
#include <string>

namespace c3 {

struct LrSchedule {
  std::string kind = "cosine";  // cosine | linear | constant
  double lr = 1e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double factor(int64_t step) const;
  double at(int64_t step) const { return lr * factor(step); }
};

// HF's TrainingArguments.get_warmup_steps: ceil(total * ratio).
int64_t warmup_steps_from_ratio(double ratio, int64_t total_steps);

}  // namespace c3
