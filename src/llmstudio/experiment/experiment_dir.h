// The experiment folder (<output_directory>/<experiment_name>) and what lies in it, in one place for the trainer,
// the studio and generation:
//   cfg.yaml            the resolved config (experiment_config.h)
//   status.json         run status and progress (run_status.h)
//   metrics.jsonl       one JSON object per train step / validation / summary
//   logs.txt            the run's log lines
//   checkpoint/         model.safetensors (trainable tensors), optimizer.safetensors, trainer_state.json
//   validation_predictions.csv   prompts, targets and predictions of an evaluation (prediction.metric BLEU)
//   final model: adapter_config.json + adapter_model.safetensors (LoRA, PEFT format) or config.json +
//   model.safetensors[.index.json] (full fine-tuning), plus the backbone's tokenizer files.
// Also the trainer state kept in a checkpoint, the atomic checkpoint write, and which model an experiment resolves
// to (the finished folder's own weights, or its llm_backbone with the folder's adapter).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llmstudio::experiment {

class ExperimentDir {
 public:
  explicit ExperimentDir(std::filesystem::path dir) : dir_(std::move(dir)) {}
  const std::filesystem::path& path() const { return dir_; }
  std::filesystem::path config_file() const { return dir_ / "cfg.yaml"; }
  std::filesystem::path status_file() const { return dir_ / "status.json"; }
  std::filesystem::path metrics_file() const { return dir_ / "metrics.jsonl"; }
  std::filesystem::path log_file() const { return dir_ / "logs.txt"; }
  std::filesystem::path checkpoint_dir() const { return dir_ / "checkpoint"; }
  std::filesystem::path predictions_file() const { return dir_ / "validation_predictions.csv"; }
  std::filesystem::path trainer_state_file() const { return checkpoint_dir() / "trainer_state.json"; }
  bool has_config() const;
  bool has_checkpoint() const;          // checkpoint/trainer_state.json exists (resumable)
  bool has_lora_model() const;          // adapter_config.json + adapter_model.safetensors
  bool has_full_model() const;          // config.json + model.safetensors (or its index)

 private:
  std::filesystem::path dir_;
};

// trainer_state.json of a checkpoint.
struct TrainerState {
  std::int64_t step = 0;
  std::int64_t total_steps = 0;
  std::uint64_t seed = 0;
  std::optional<double> best_metric;   // the best validation value so far (save_checkpoint: best)
  std::optional<double> loss_scale;    // float16 loss scaling
  std::int64_t loss_scale_good_steps = 0;
};

TrainerState read_trainer_state(const std::filesystem::path& checkpoint_dir);

// Writes a checkpoint into `checkpoint_dir` atomically: a fresh sibling folder (<name>.tmp) renamed over the old one,
// so a crash leaves the previous checkpoint or the new one, never a mix.
void write_checkpoint(const std::filesystem::path& checkpoint_dir,
                      const std::vector<std::pair<std::string, at::Tensor>>& model_tensors,
                      const std::map<std::string, at::Tensor>& optimizer_state, const TrainerState& state);

// The model a finished experiment stands for.
struct ExperimentModel {
  std::filesystem::path model_dir;    // config.json + weights
  std::filesystem::path adapter_dir;  // "" for full fine-tuning
  std::filesystem::path tokenizer_dir;
};

// `llm_backbone` is the experiment's (from its cfg.yaml). Throws, naming the run's status, when the experiment has
// no final model yet, and when a LoRA experiment's backbone folder is gone.
ExperimentModel resolve_experiment_model(const ExperimentDir& dir, const std::filesystem::path& llm_backbone);

}  // namespace llmstudio::experiment
