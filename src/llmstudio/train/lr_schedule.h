// Learning-rate schedules (H2O LLM Studio's `schedule`): Cosine, Linear, Constant, each after a linear warmup
// from 0, decaying to learning_rate * min_learning_rate_ratio.
#pragma once

#include <cstdint>
#include <string>

namespace llmstudio::train {

struct LrSchedule {
  std::string kind = "Cosine";  // Cosine, Linear, Constant
  double base_lr = 1e-4;
  double min_ratio = 0.0;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;

  void validate() const;
  // Learning rate for optimizer step `step` (0-based).
  double at(std::int64_t step) const;
};

}  // namespace llmstudio::train
