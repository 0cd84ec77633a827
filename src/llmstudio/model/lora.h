// LoRA adapters on the decoder's linear projections: attach (PEFT's initialisation), load and save in PEFT's
// format (adapter_config.json + adapter_model.safetensors with PEFT's tensor names), and merge into the base.
// Variants as PEFT's LoraConfig: rsLoRA (use_rslora: scaling alpha / sqrt(r)) and DoRA (use_dora: a magnitude
// vector per projection, model/dora.h). Base-model tensors trained along with the adapter
// (training.lora_unfreeze_layers) are stored in the adapter file under their PEFT names (see save_peft_adapter).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "llmstudio/model/causal_lm.h"

namespace llmstudio::model {

using NamedTensorList = std::vector<std::pair<std::string, at::Tensor>>;

struct LoraConfig {
  std::int64_t r = 4;
  double alpha = 16.0;
  double dropout = 0.05;
  bool use_rslora = false;  // scaling alpha / sqrt(r) instead of alpha / r (PEFT's LoraLayer.update_layer)
  bool use_dora = false;    // weight-decomposed LoRA (PEFT's DoraLinearLayer)
  std::vector<std::string> target_modules;  // short names (q_proj, ..., down_proj); empty = every linear layer
  // Hugging Face names of base-model tensors saved with the adapter (trained through lora_unfreeze_layers).
  std::vector<std::string> saved_base_tensors;

  std::vector<std::string> resolved_targets() const;  // target_modules, or all projections when empty
  double scaling() const;
  void validate() const;  // errors name the key, value and allowed values
};

// Adds adapters to the targeted projections: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform with
// a=sqrt(5)), B = 0, with DoRA the magnitude vector = the row norms of the base weight; float32 on the model's
// device. Base weights are frozen (requires_grad false), adapters trainable.
void attach_lora(CausalLM& model, const LoraConfig& config, std::uint64_t seed);

// The adapter tensors with PEFT's names ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
// "...q_proj.lora_B.weight", with DoRA "...q_proj.lora_magnitude_vector").
NamedTensorList lora_parameters(const CausalLM& model);

// Every base-model tensor under the name PEFT's model gives it: "base_model.model." + the Hugging Face name, with
// ".base_layer" before ".weight"/".bias" of a projection that carries an adapter (PEFT wraps it). These are the
// names H2O matches lora_unfreeze_layers against.
NamedTensorList peft_base_parameters(const CausalLM& model);

// What save_peft_adapter writes: the adapters and config.saved_base_tensors (PEFT names).
NamedTensorList adapter_tensors(const CausalLM& model, const LoraConfig& config);

// Copies adapter weights (PEFT names) into an attached model; every adapter must be present and of the right
// shape. Other tensors in `tensors` are not looked at.
void load_lora_weights(CausalLM& model, const std::map<std::string, at::Tensor>& tensors, const std::string& source);

// Writes adapter_config.json and adapter_model.safetensors (atomic) into `dir`. Base tensors listed in
// config.saved_base_tensors go into the same file under their PEFT names, the names PEFT itself writes for
// modules_to_save; PEFT's loader (set_peft_model_state_dict, a non-strict load_state_dict) puts them into the base
// model, so PeftModel.from_pretrained reproduces the trained model. (H2O keeps such layers only in its
// checkpoint.pth, not in the adapter files.)
void save_peft_adapter(const CausalLM& model, const LoraConfig& config, const std::filesystem::path& dir,
                       const std::string& base_model_name_or_path);

// Reads adapter_config.json + adapter_model.safetensors from `dir` and attaches them to `model`; base-model
// tensors in the file replace the model's (and are listed in the returned saved_base_tensors). A tensor that is
// neither an adapter nor a base tensor is an error.
LoraConfig load_peft_adapter(CausalLM& model, const std::filesystem::path& dir);

// Folds every adapter into its base weight (W += scaling * B A; DoRA: W = m / ||W + s B A||_row (W + s B A)) and
// removes the adapters.
void merge_lora(CausalLM& model);

}  // namespace llmstudio::model
