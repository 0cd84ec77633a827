// The fine-tuning run behind `llmstudio train`: experiment folder, data preparation, LoRA or full fine-tuning,
// the optimisation loop (gradient accumulation, clipping, schedule), validation (loss, perplexity, BLEU), metrics as
// JSON lines, atomic checkpoints, stop at a step boundary on request (Ctrl-C) and resume to the same result.
//
// The experiment folder it writes is described in experiment/experiment_dir.h; status.json in run_status.h.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "llmstudio/experiment/experiment_config.h"
#include "llmstudio/experiment/run_status.h"

namespace llmstudio::train {

using experiment::ExperimentConfig;

struct TrainOptions {
  std::filesystem::path config_path;       // cfg.yaml of a new experiment
  std::vector<std::string> overrides;      // "section.key=value"
  std::filesystem::path resume_dir;        // or: an interrupted experiment to continue
  std::string device;                      // --device (empty: $LLMSTUDIO_DEVICE or auto)
  std::int64_t max_steps = 0;              // stop (finished) after this many optimizer steps; 0 = all epochs
  const std::atomic<bool>* stop = nullptr; // set by a signal handler: checkpoint at the next step boundary
  bool progress_bar = false;               // \r progress line (a terminal) instead of plain lines
  std::function<void(std::int64_t)> after_step;  // called after each optimizer step with the steps done
  // Like after_step, but without first writing that step's metrics (which would wait for the device): for
  // observers that must not change the run's timing (train/step_profiler).
  std::function<void(std::int64_t)> step_observer;
};

struct TrainResult {
  std::filesystem::path experiment_dir;
  experiment::RunStatus status = experiment::RunStatus::Finished;  // Finished or Interrupted
  std::int64_t steps = 0;
  std::int64_t total_steps = 0;
  double last_loss = 0;
};

// Runs (or resumes) an experiment; log lines go to `log` and logs.txt. Throws llmstudio::Error on bad
// configs/data (nothing is created before the config and data are checked).
TrainResult run_training(const TrainOptions& options, std::ostream& log);

}  // namespace llmstudio::train
