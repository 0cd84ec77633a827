// Which tensors a run trains, decided as H2O LLM Studio does (llm_studio/src/utils/modeling_utils.py):
// - with LoRA (its prepare_lora): the adapters on training.lora_target_modules, rsLoRA / DoRA per
//   training.use_rslora / use_dora, plus every base-model parameter whose PEFT name contains one of
//   training.lora_unfreeze_layers as a substring (H2O: any(unfreeze_layer in name) over the PEFT model's
//   named_parameters, so "embed" = model.embed_tokens, "head" = lm_head, "layers.0." = the first block);
// - without LoRA (its create_nlp_backbone): every parameter except those whose Hugging Face name contains one of
//   training.freeze_layers (H2O's choices "embed", "layer", "head", or any substring).
// H2O applies freeze_layers only without LoRA (its form hides it with LoRA; the base is frozen anyway) and
// lora_unfreeze_layers only with LoRA: here the other combination is logged as a warning and has no effect.
// architecture.intermediate_dropout: H2O (update_backbone_config) writes it to the backbone config's
// hidden_dropout_prob and attention_probs_dropout_prob (BERT-style names); the Llama family's one dropout is
// config.attention_dropout, on the attention probabilities in training mode, which is what this sets
// (CausalLM::set_attention_dropout). The trainer calls setup_trainable once, after loading the model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmstudio/experiment/experiment_config.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"

namespace llmstudio::train {

struct TrainableSpec {
  bool lora = true;
  model::LoraConfig lora_config;
  std::vector<std::string> unfreeze;  // training.lora_unfreeze_layers
  std::vector<std::string> freeze;    // training.freeze_layers
  double attention_dropout = 0.0;     // architecture.intermediate_dropout
};

// The spec of an experiment config.
TrainableSpec trainable_spec(const experiment::ExperimentConfig& cfg);

struct Trainable {
  // For the optimizer and checkpoints: PEFT names with LoRA (adapters, then unfrozen base tensors), Hugging Face
  // names without.
  model::NamedTensorList params;
  model::LoraConfig lora_config;  // with LoRA: saved_base_tensors = the unfrozen base tensors
  std::vector<std::string> log;   // what was chosen; lines starting "warning: " for entries that did nothing
};

// Attaches the adapters (LoRA; `seed` draws their A matrices), sets requires_grad on exactly the returned
// tensors, and sets the attention dropout. Error when nothing would train.
Trainable setup_trainable(model::CausalLM& model, const TrainableSpec& spec, std::uint64_t seed);
inline Trainable setup_trainable(model::CausalLM& model, const experiment::ExperimentConfig& cfg, std::uint64_t seed) {
  return setup_trainable(model, trainable_spec(cfg), seed);
}

// H2O's rule: `name` contains one of `entries` (empty entries match nothing).
bool name_matches(const std::string& name, const std::vector<std::string>& entries);

}  // namespace llmstudio::train
