// StepProfiler: a Kineto (torch profiler) trace of chosen training steps, for finding where a step's time goes.
// Driven by the environment so any `llmstudio train` run can be profiled without a config key:
//   LLMS_PROFILE_STEPS=A:B   record optimizer steps A+1 .. B (CPU ops and, on CUDA, every kernel)
//   LLMS_PROFILE_OUT=FILE    where the Chrome trace goes (default: profile-trace.json in the working folder)
// bench/profile_summary.py turns the trace into a per-kernel table.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace llmstudio::train {

class StepProfiler {
 public:
  StepProfiler(std::int64_t start_after, std::int64_t stop_after, std::string out);
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  // The profiler from LLMS_PROFILE_STEPS / LLMS_PROFILE_OUT, or nullptr when LLMS_PROFILE_STEPS is unset.
  static std::shared_ptr<StepProfiler> from_env();

  // Call after each optimizer step with the number of steps done: starts after step A, saves after step B.
  void after_step(std::int64_t step);

 private:
  std::int64_t start_after_, stop_after_;
  std::string out_;
  bool active_ = false;
};

}  // namespace llmstudio::train
