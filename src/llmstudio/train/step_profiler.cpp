// Kineto trace of chosen training steps (see step_profiler.h).
#include "llmstudio/train/step_profiler.h"

#include <ATen/Context.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdlib>
#include <iostream>
#include <set>

#include "llmstudio/core/error.h"
#include "llmstudio/platform/platform.h"

namespace llmstudio::train {
namespace {

namespace prof = torch::profiler::impl;

std::set<prof::ActivityType> activities() {
  std::set<prof::ActivityType> a{prof::ActivityType::CPU};
  if (at::hasCUDA()) a.insert(prof::ActivityType::CUDA);
  return a;
}

prof::ProfilerConfig config() { return prof::ProfilerConfig(prof::ProfilerState::KINETO); }

}  // namespace

StepProfiler::StepProfiler(std::int64_t start_after, std::int64_t stop_after, std::string out)
    : start_after_(start_after), stop_after_(stop_after), out_(std::move(out)) {
  LLMS_CHECK(start_after_ >= 0 && stop_after_ > start_after_, "LLMS_PROFILE_STEPS must be A:B with 0 <= A < B, found ",
             start_after_, ":", stop_after_);
  torch::autograd::profiler::prepareProfiler(config(), activities());
}

StepProfiler::~StepProfiler() {
  if (active_) torch::autograd::profiler::disableProfiler();
}

std::shared_ptr<StepProfiler> StepProfiler::from_env() {
  const char* steps = std::getenv("LLMS_PROFILE_STEPS");
  if (!steps || !*steps) return nullptr;
  const std::string s(steps);
  const auto colon = s.find(':');
  LLMS_CHECK(colon != std::string::npos, "LLMS_PROFILE_STEPS must be A:B (record steps A+1..B), found '", s, "'");
  char* end = nullptr;
  const long long a = std::strtoll(s.c_str(), &end, 10);
  LLMS_CHECK(end == s.c_str() + colon, "LLMS_PROFILE_STEPS: '", s, "' does not start with a step number");
  const long long b = std::strtoll(s.c_str() + colon + 1, &end, 10);
  LLMS_CHECK(*end == '\0', "LLMS_PROFILE_STEPS: '", s, "' does not end with a step number");
  const char* out = std::getenv("LLMS_PROFILE_OUT");
  return std::make_shared<StepProfiler>(a, b, out && *out ? out : "profile-trace.json");
}

void StepProfiler::after_step(std::int64_t step) {
  if (step == start_after_ && !active_) {
    platform::synchronize_device();
    torch::autograd::profiler::enableProfiler(config(), activities());
    active_ = true;
  } else if (step == stop_after_ && active_) {
    platform::synchronize_device();
    auto result = torch::autograd::profiler::disableProfiler();
    active_ = false;
    result->save(out_);
    std::cerr << "profile of steps " << start_after_ + 1 << ".." << stop_after_ << " written to " << out_ << "\n";
  }
}

}  // namespace llmstudio::train
