// Weights folders of an experiment beyond the resume checkpoint: the per-evaluation checkpoints of
// training.save_checkpoint: each_evaluation_epoch, and architecture.pretrained_weights (starting a run from the
// weights of another experiment of ours).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <ATen/ATen.h>

#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"

namespace llmstudio::train {

// --- training.save_checkpoint: each_evaluation_epoch -----------------------------------------------------------
// Mirrors H2O LLM Studio's run_train (llm_studio/train.py): at each evaluation it saves the model into
// <output>/epoch_{epoch}_step_{itr} (epoch counted from 0, itr the 0-based index of the last batch of the epoch
// that was trained, so gradient accumulation counts each micro-batch) and points the experiment's top-level model
// files at the newest one (create_symlinks_in_parent_folder). Ours writes the same folder name; the top-level
// model is written at the end of the run (our trainer also evaluates after the last step, so it equals the newest
// evaluation folder) instead of symlinks, which the studio's confinement refuses to follow.

// "epoch_E_step_I" for an evaluation after optimizer step `step` (1-based count of steps done).
std::string evaluation_checkpoint_name(std::int64_t step, std::int64_t steps_per_epoch, std::int64_t grad_accumulation);

// Writes the model into `folder`: with LoRA the PEFT adapter (adapter_config.json, adapter_model.safetensors),
// else the full weights (model.safetensors, sharded past 2 GiB, and the config.json of `backbone`). The final model
// of a run and each evaluation folder are written by it.
void save_model_files(const std::filesystem::path& folder, const model::CausalLM& lm,
                      const std::optional<model::LoraConfig>& lora, const std::filesystem::path& backbone);

// save_model_files into experiment_dir/name (written beside it, then renamed over an existing one). Returns the
// folder.
std::filesystem::path save_evaluation_checkpoint(const std::filesystem::path& experiment_dir, const std::string& name,
                                                 const model::CausalLM& lm, const std::optional<model::LoraConfig>& lora,
                                                 const std::filesystem::path& backbone);

// --- architecture.pretrained_weights ----------------------------------------------------------------------------
// H2O (load_checkpoint in llm_studio/src/utils/modeling_utils.py, called from train.py's run) loads the "model"
// state dict of another experiment's checkpoint.pth into the freshly built model (LoRA adapters included), not
// strictly: tensors of another size are dropped with a warning. Ours reads a folder of ours: an experiment
// folder (its final adapter or full weights; an unfinished one's checkpoint/), its checkpoint/ folder, or an
// epoch_E_step_I folder. Every tensor the run needs must be there with the same shape, or the run fails naming it
// (a silently partial start is what this key must not do).

struct PretrainedWeights {
  std::filesystem::path folder;   // where the tensors were found
  bool adapter = false;           // LoRA adapter tensors (PEFT names) rather than full model weights
  bool has_adapter_config = false;  // adapter_config.json beside the adapter (needed to merge it)
  std::map<std::string, at::Tensor> tensors;
};

// Resolves and reads the setting (checked before the experiment folder exists). Errors name the key, the folder
// and what was expected. Under $LLMSTUDIO_CONFINE_ROOTS the folder must lie under an allowed root.
PretrainedWeights read_pretrained_weights(const std::string& setting);

// Before LoRA is attached: full weights go into the model; a LoRA adapter for a full fine-tuning run is merged
// into it (its adapter_config.json gives the scaling). Returns a line for the log, or "" when nothing was done.
std::string apply_pretrained_base_weights(model::CausalLM& lm, const PretrainedWeights& w, bool lora_run);

// After LoRA is attached (LoRA runs): adapter weights replace the fresh adapters. "" when nothing was done.
std::string apply_pretrained_adapter_weights(model::CausalLM& lm, const PretrainedWeights& w);

}  // namespace llmstudio::train
