// Learning-rate schedules (H2O LLM Studio's `schedule`): Cosine, Linear, Constant, each after a linear warmup
// from 0, decaying to learning_rate * min_learning_rate_ratio.
#pragma once

#include <cstdint>
#include <string>

#include "llmstudio/experiment/config_enums.h"

namespace llmstudio::train {

struct LrSchedule {
  experiment::ScheduleKind kind = experiment::ScheduleKind::Cosine;
  double base_lr = 1e-4;
  double min_ratio = 0.0;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;

  void validate() const;
  // Learning rate for optimizer step `step` (0-based).
  double at(std::int64_t step) const;
};

}  // namespace llmstudio::train
