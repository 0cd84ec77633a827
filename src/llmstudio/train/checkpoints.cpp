// Per-evaluation checkpoints and pretrained weights (see checkpoints.h).
#include "llmstudio/train/checkpoints.h"

#include <ATen/core/grad_mode.h>

#include <map>
#include <set>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/confined_files.h"
#include "llmstudio/io/safetensors.h"

namespace llmstudio::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kKey = "architecture.pretrained_weights";

// Under $LLMSTUDIO_CONFINE_ROOTS (a run started by the studio) a folder is read only when it, and every link in
// it, lies under an allowed root.
void check_confined(const fs::path& folder, const std::string& what) {
  const auto roots = io::confine_roots_from_env();
  if (roots.empty()) return;
  const fs::path real = io::real_path(folder);
  bool inside = false;
  for (const auto& r : roots) inside = inside || (!real.empty() && io::is_within(real, r));
  LLMS_CHECK(inside, what, ": ", folder, " is outside the folders this run may read",
             "\n  hint: allow its folder with --allow-path when starting the studio");
  io::check_confined_folder(folder, roots, what);
}

bool has_full_weights(const fs::path& folder) {
  return fs::exists(folder / "model.safetensors") || fs::exists(folder / "model.safetensors.index.json");
}

bool has_lora_names(const std::map<std::string, at::Tensor>& tensors) {
  for (const auto& [name, t] : tensors)
    if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) return true;
  return false;
}

// The folder holding the weights: the given one when it has weights, else its checkpoint/ (an unfinished run).
fs::path weights_folder(const fs::path& given) {
  if (fs::exists(given / "adapter_model.safetensors") || has_full_weights(given)) return given;
  if (has_full_weights(given / "checkpoint")) return given / "checkpoint";
  fail(kKey, " '", given.string(), "' holds no weights of ours: expected an llmstudio experiment folder ",
       "(adapter_model.safetensors or model.safetensors, or checkpoint/model.safetensors of an unfinished run), ",
       "its checkpoint/ folder, or one of its epoch_E_step_I folders");
}

std::string shape_text(const at::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

}  // namespace

std::string evaluation_checkpoint_name(std::int64_t step, std::int64_t steps_per_epoch, std::int64_t grad_accumulation) {
  LLMS_CHECK(step >= 1 && steps_per_epoch >= 1 && grad_accumulation >= 1, "evaluation_checkpoint_name: step ", step,
             ", steps per epoch ", steps_per_epoch, ", accumulation ", grad_accumulation);
  const std::int64_t epoch = (step - 1) / steps_per_epoch;
  const std::int64_t step_in_epoch = (step - 1) % steps_per_epoch + 1;  // optimizer steps done in this epoch
  return "epoch_" + std::to_string(epoch) + "_step_" + std::to_string(step_in_epoch * grad_accumulation - 1);
}

void save_model_files(const fs::path& folder, const model::CausalLM& lm, const std::optional<model::LoraConfig>& lora,
                      const fs::path& backbone) {
  if (lora) {
    model::save_peft_adapter(lm, *lora, folder, fs::absolute(backbone).string());
    return;
  }
  fs::create_directories(folder);
  io::NamedTensors t;
  for (auto& [n, p] : lm.named_parameters()) t.emplace_back(n, p.detach());
  io::save_sharded(folder, t, 2ULL << 30, {{"format", "pt"}});
  if (const auto roots = io::confine_roots_from_env(); !roots.empty())  // as the trainer checks the backbone
    io::check_confined_folder(backbone, roots, "llm_backbone");
  io::write_file_atomic(folder / "config.json", io::read_file(backbone / "config.json"));
}

fs::path save_evaluation_checkpoint(const fs::path& experiment_dir, const std::string& name, const model::CausalLM& lm,
                                    const std::optional<model::LoraConfig>& lora, const fs::path& backbone) {
  const fs::path folder = experiment_dir / name, tmp = experiment_dir / (name + ".tmp");
  io::remove_tree(tmp);
  save_model_files(tmp, lm, lora, backbone);
  io::remove_tree(folder);
  fs::rename(tmp, folder);
  return folder;
}

PretrainedWeights read_pretrained_weights(const std::string& setting) {
  const fs::path given = setting;
  LLMS_CHECK(fs::exists(given), kKey, " '", setting, "' does not exist; expected an llmstudio experiment folder");
  LLMS_CHECK(fs::is_directory(given), kKey, " '", setting, "' is a file; expected an llmstudio experiment folder ",
             "(a PyTorch checkpoint.pth of H2O LLM Studio cannot be read: give the experiment folder of ours)");
  check_confined(given, kKey);
  PretrainedWeights w;
  w.folder = weights_folder(given);
  const fs::path file = fs::exists(w.folder / "adapter_model.safetensors") ? w.folder / "adapter_model.safetensors" : w.folder;
  w.tensors = io::load_safetensors_dir(file);
  LLMS_CHECK(!w.tensors.empty(), kKey, ": ", file, " holds no tensors");
  w.adapter = has_lora_names(w.tensors);
  w.has_adapter_config = fs::exists(w.folder / "adapter_config.json");
  return w;
}

std::string apply_pretrained_base_weights(model::CausalLM& lm, const PretrainedWeights& w, bool lora_run) {
  if (w.adapter) {
    if (lora_run) return "";  // loaded into the adapters once they are attached
    LLMS_CHECK(w.has_adapter_config, kKey, ": ", w.folder, " holds LoRA adapter weights without adapter_config.json; ",
               "a full fine-tuning run merges an adapter into the model and needs its configuration",
               "\n  hint: give the finished LoRA experiment's folder");
    model::load_peft_adapter(lm, w.folder);
    model::merge_lora(lm);
    return "pretrained weights: the LoRA adapter of " + w.folder.string() + " merged into the model";
  }
  at::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& [name, p] : lm.named_parameters()) {
    auto it = w.tensors.find(name);
    LLMS_CHECK(it != w.tensors.end(), kKey, ": ", w.folder, " lacks tensor ", name,
               " of the model (weights of another architecture?)");
    LLMS_CHECK(it->second.sizes() == p.sizes(), kKey, ": tensor ", name, " in ", w.folder, " has shape ",
               shape_text(it->second), ", the model (llm_backbone) expects ", shape_text(p),
               "\n  hint: pretrained weights must come from an experiment on the same backbone");
    p.copy_(it->second);
    used.insert(name);
  }
  for (const auto& [name, t] : w.tensors)
    LLMS_CHECK(used.count(name), kKey, ": ", w.folder, " holds tensor ", name,
               " that the model (llm_backbone) does not have (weights of another architecture?)");
  return "pretrained weights: " + std::to_string(used.size()) + " tensors of " + w.folder.string() +
         (lora_run ? " loaded into the base model (LoRA adapters start fresh)" : "");
}

std::string apply_pretrained_adapter_weights(model::CausalLM& lm, const PretrainedWeights& w) {
  if (!w.adapter) return "";
  const auto params = model::lora_parameters(lm);
  std::set<std::string> expected;
  for (const auto& [name, p] : params) expected.insert(name);
  std::map<std::string, at::Tensor> base;  // base tensors saved with the adapter (lora_unfreeze_layers)
  for (const auto& [name, p] : model::peft_base_parameters(lm)) base.emplace(name, p);
  at::NoGradGuard no_grad;
  for (const auto& [name, t] : w.tensors) {
    if (expected.count(name)) continue;
    auto it = base.find(name);
    LLMS_CHECK(it != base.end() && it->second.sizes() == t.sizes(), kKey, ": ", w.folder, " holds adapter tensor ",
               name, " that this run has no adapter for",
               "\n  hint: training.lora_target_modules and use_dora must match the experiment the weights come from");
    it->second.copy_(t);
  }
  std::string source = w.folder.string();
  source.insert(0, "architecture.pretrained_weights ");
  model::load_lora_weights(lm, w.tensors, source);
  return "pretrained weights: " + std::to_string(params.size()) + " LoRA adapter tensors of " + w.folder.string();
}

}  // namespace llmstudio::train
