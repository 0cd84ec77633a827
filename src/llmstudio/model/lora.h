// LoRA adapters on the decoder's linear projections: attach (PEFT's initialisation), load and save in PEFT's
// format (adapter_config.json + adapter_model.safetensors with PEFT's tensor names), and merge into the base.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "llmstudio/model/causal_lm.h"

namespace llmstudio::model {

struct LoraConfig {
  std::int64_t r = 4;
  double alpha = 16.0;
  double dropout = 0.05;
  std::vector<std::string> target_modules;  // short names (q_proj, ..., down_proj); empty = every linear layer

  std::vector<std::string> resolved_targets() const;  // target_modules, or all projections when empty
  double scaling() const { return alpha / static_cast<double>(r); }
  void validate() const;  // errors name the key, value and allowed values
};

// Adds adapters to the targeted projections: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform with
// a=sqrt(5)), B = 0, in float32 on the model's device. Base weights are frozen (requires_grad false),
// adapters trainable.
void attach_lora(CausalLM& model, const LoraConfig& config, std::uint64_t seed);

// The adapter tensors with PEFT's names ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").
std::vector<std::pair<std::string, at::Tensor>> lora_parameters(const CausalLM& model);

// Copies adapter weights (PEFT names) into an attached model; every adapter must be present and of the right shape.
void load_lora_weights(CausalLM& model, const std::map<std::string, at::Tensor>& tensors, const std::string& source);

// Writes adapter_config.json and adapter_model.safetensors (atomic) into `dir`.
void save_peft_adapter(const CausalLM& model, const LoraConfig& config, const std::filesystem::path& dir,
                       const std::string& base_model_name_or_path);

// Reads adapter_config.json + adapter_model.safetensors from `dir` and attaches them to `model`.
LoraConfig load_peft_adapter(CausalLM& model, const std::filesystem::path& dir);

// Folds every adapter into its base weight (W += scaling * B A) and removes the adapters.
void merge_lora(CausalLM& model);

}  // namespace llmstudio::model
