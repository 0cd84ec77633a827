// The experiment folder's layout, trainer state, checkpoints and final model (see experiment_dir.h).
#include "llmstudio/experiment/experiment_dir.h"

#include <nlohmann/json.hpp>

#include "llmstudio/core/error.h"
#include "llmstudio/experiment/run_status.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/io/safetensors.h"

namespace llmstudio::experiment {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

}  // namespace

bool ExperimentDir::has_config() const {
  std::error_code ec;
  return fs::is_regular_file(config_file(), ec);
}

bool ExperimentDir::has_checkpoint() const { return present(trainer_state_file()); }

bool ExperimentDir::has_lora_model() const {
  return present(dir_ / "adapter_config.json") && present(dir_ / "adapter_model.safetensors");
}

bool ExperimentDir::has_full_model() const {
  return present(dir_ / "config.json") &&
         (present(dir_ / "model.safetensors") || present(dir_ / "model.safetensors.index.json"));
}

TrainerState read_trainer_state(const fs::path& checkpoint_dir) {
  const fs::path file = checkpoint_dir / "trainer_state.json";
  const json j = io::parse_json(io::read_file(file), file.string());
  TrainerState s;
  try {
    s.step = j.at("step").get<std::int64_t>();
    s.total_steps = j.value("total_steps", std::int64_t{0});
    s.seed = j.value("seed", std::uint64_t{0});
    if (j.contains("best_metric")) s.best_metric = j.at("best_metric").get<double>();
    if (j.contains("loss_scale")) s.loss_scale = j.at("loss_scale").get<double>();
    s.loss_scale_good_steps = j.value("loss_scale_good_steps", std::int64_t{0});
  } catch (const json::exception& e) {
    fail(file, ": not a trainer state (", e.what(), ")\n  hint: the checkpoint is damaged; start the run again");
  }
  LLMS_CHECK(s.step >= 0, file, ": step ", s.step, " is negative");
  return s;
}

void write_checkpoint(const fs::path& checkpoint_dir, const std::vector<std::pair<std::string, at::Tensor>>& model_tensors,
                      const std::map<std::string, at::Tensor>& optimizer_state, const TrainerState& state) {
  const fs::path tmp = checkpoint_dir.string() + ".tmp", old = checkpoint_dir.string() + ".old";
  io::remove_tree(tmp);
  fs::create_directories(tmp);
  io::save_safetensors(tmp / "model.safetensors", model_tensors);
  io::NamedTensors opt(optimizer_state.begin(), optimizer_state.end());
  io::save_safetensors(tmp / "optimizer.safetensors", opt);
  json j = {{"step", state.step}, {"total_steps", state.total_steps}, {"seed", state.seed}};
  if (state.best_metric) j["best_metric"] = *state.best_metric;
  if (state.loss_scale) {
    j["loss_scale"] = *state.loss_scale;
    j["loss_scale_good_steps"] = state.loss_scale_good_steps;
  }
  io::write_file_atomic(tmp / "trainer_state.json", j.dump(2) + "\n");
  io::remove_tree(old);
  if (present(checkpoint_dir)) fs::rename(checkpoint_dir, old);
  fs::rename(tmp, checkpoint_dir);
  io::remove_tree(old);
}

ExperimentModel resolve_experiment_model(const ExperimentDir& dir, const fs::path& llm_backbone) {
  const std::string where = dir.path().string();
  if (!dir.has_lora_model() && !dir.has_full_model()) {
    const auto progress = read_run_progress(dir.path());
    fail("experiment ", where, " has no final model yet (status: ",
         progress ? std::string(to_string(progress->status)) : std::string("unknown"),
         "); wait until it finishes, or continue it with `llmstudio train --resume ", where, "`");
  }
  ExperimentModel m;
  m.tokenizer_dir = dir.path();  // training copies the backbone's tokenizer files next to the model
  if (dir.has_full_model()) {
    m.model_dir = dir.path();
    return m;
  }
  m.model_dir = llm_backbone;
  m.adapter_dir = dir.path();
  std::error_code ec;
  LLMS_CHECK(fs::is_directory(m.model_dir, ec), "experiment ", where, ": its llm_backbone '", m.model_dir.string(),
             "' is not a folder any more; the LoRA adapter needs its base model");
  return m;
}

}  // namespace llmstudio::experiment
