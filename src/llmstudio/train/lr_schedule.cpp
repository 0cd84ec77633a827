// Learning-rate schedules (see lr_schedule.h).
#include "llmstudio/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "llmstudio/core/error.h"

namespace llmstudio::train {

void LrSchedule::validate() const {
  LLMS_CHECK(base_lr > 0, "learning_rate must be > 0, found ", base_lr);
  LLMS_CHECK(min_ratio >= 0 && min_ratio <= 1, "min_learning_rate_ratio must be in [0, 1], found ", min_ratio);
  LLMS_CHECK(warmup_steps >= 0 && total_steps >= 1, "schedule needs warmup_steps >= 0 and total_steps >= 1, found ",
             warmup_steps, " and ", total_steps);
}

double LrSchedule::at(std::int64_t step) const {
  if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps + 1);
  const std::int64_t decay_steps = std::max<std::int64_t>(1, total_steps - warmup_steps);
  const double progress = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
  double shape = 1.0;
  switch (kind) {
    case experiment::ScheduleKind::Constant: return base_lr;
    case experiment::ScheduleKind::Cosine: shape = 0.5 * (1.0 + std::cos(M_PI * progress)); break;
    case experiment::ScheduleKind::Linear: shape = 1.0 - progress; break;
  }
  return base_lr * (min_ratio + (1.0 - min_ratio) * shape);
}

}  // namespace llmstudio::train
