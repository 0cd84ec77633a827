// `llmstudio train -c cfg.yaml [--set k=v ...]` and `llmstudio train --resume <experiment dir>`.
// SIGINT/SIGTERM ask the trainer to stop at the next step boundary and write a checkpoint (exit code 130).
// Test hooks: LLMS_TEST_SIGINT_AT_STEP=N raises a real SIGINT in this process right after optimizer step N, so a
// test stops a run at a known step through the real signal handler; LLMS_TEST_FAIL_AT_STEP=N throws an error
// there, so a test sees what a run that fails mid-way leaves (tests/parity/test_train_e2e.py).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "command.h"
#include "llmstudio/core/error.h"
#include "llmstudio/train/step_profiler.h"
#include "llmstudio/train/trainer.h"

namespace llmstudio::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

// A step number from the environment variable `name` (0 when unset).
std::int64_t test_step(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long long at = std::strtoll(v, &end, 10);
  LLMS_CHECK(*end == '\0' && at > 0, name, " must be a step number > 0, found '", v, "'");
  return at;
}

// The after-step callback of the test hooks, or none when neither is set.
std::function<void(std::int64_t)> test_step_hook() {
  const std::int64_t sigint_at = test_step("LLMS_TEST_SIGINT_AT_STEP"), fail_at = test_step("LLMS_TEST_FAIL_AT_STEP");
  if (!sigint_at && !fail_at) return {};
  return [sigint_at, fail_at](std::int64_t step) {
    if (step == sigint_at) std::raise(SIGINT);
    if (step == fail_at) fail("LLMS_TEST_FAIL_AT_STEP: the run fails after step ", step, " (test hook)");
  };
}

struct TrainCliOptions {
  std::string config, resume, device;
  std::vector<std::string> overrides;
  std::int64_t max_steps = 0;
};

void setup_train(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  auto* cmd = app.add_subcommand("train", "Fine-tune a model (LoRA or full) from an H2O-style cfg.yaml");
  cmd->add_option("-c,--config", o->config, "Experiment config (H2O LLM Studio cfg.yaml layout)");
  cmd->add_option("--set", o->overrides, "Override a key: section.key=value (repeatable), e.g. training.epochs=2");
  cmd->add_option("--resume", o->resume, "Continue an interrupted experiment folder");
  cmd->add_option("--device", o->device, "auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->add_option("--max-steps", o->max_steps, "Stop after this many optimizer steps (0 = all epochs)");
  cmd->callback([o] {
    LLMS_CHECK(o->config.empty() != o->resume.empty(), "give either -c cfg.yaml or --resume <experiment dir>");
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    train::TrainOptions t;
    t.config_path = o->config;
    t.resume_dir = o->resume;
    t.overrides = o->overrides;
    t.device = o->device;
    t.max_steps = o->max_steps;
    t.stop = &g_stop;
    auto profiler = train::StepProfiler::from_env();  // LLMS_PROFILE_STEPS=A:B (step_profiler.h)
    t.after_step = test_step_hook();
    if (profiler) t.step_observer = [profiler](std::int64_t s) { profiler->after_step(s); };
    t.progress_bar = isatty(STDOUT_FILENO) != 0;
    auto r = train::run_training(t, std::cout);
    if (r.status == experiment::RunStatus::Interrupted) std::exit(130);
  });
}

}  // namespace
LLMS_COMMAND(55, setup_train);
}  // namespace llmstudio::cli
