// Trainable tensors of a run (see trainable_params.h).
#include "llmstudio/train/trainable_params.h"

#include "llmstudio/core/error.h"

namespace llmstudio::train {
namespace {

std::string list_some(const std::vector<std::string>& names, std::size_t n = 6) {
  std::string r;
  for (std::size_t i = 0; i < names.size() && i < n; ++i) r += (i ? ", " : "") + names[i];
  if (names.size() > n) r += ", ... (" + std::to_string(names.size()) + " in all)";
  return r;
}

// Warnings for entries of `key` that match none of `names`.
void warn_unmatched(const std::string& key, const std::vector<std::string>& entries,
                    const model::NamedTensorList& named, std::vector<std::string>& log) {
  for (const auto& e : entries) {
    bool hit = false;
    for (const auto& [name, t] : named) hit = hit || name_matches(name, {e});
    if (!hit) log.push_back("warning: " + key + " entry '" + e + "' matches no parameter name (e.g. " + named.front().first + ")");
  }
}

// LoRA: adapters + unfrozen base tensors (H2O's prepare_lora).
void select_lora(model::CausalLM& m, const TrainableSpec& spec, std::uint64_t seed, Trainable& out) {
  model::attach_lora(m, spec.lora_config, seed);  // freezes every base tensor
  out.params = model::lora_parameters(m);
  const auto hf = m.named_parameters();
  const auto peft = model::peft_base_parameters(m);
  std::vector<std::string> unfrozen;
  for (std::size_t i = 0; i < peft.size(); ++i) {
    if (!name_matches(peft[i].first, spec.unfreeze)) continue;
    peft[i].second.set_requires_grad(true);
    out.params.push_back(peft[i]);
    out.lora_config.saved_base_tensors.push_back(hf[i].first);
    unfrozen.push_back(peft[i].first);
  }
  if (!spec.unfreeze.empty()) {
    warn_unmatched("training.lora_unfreeze_layers", spec.unfreeze, peft, out.log);
    if (!unfrozen.empty())
      out.log.push_back("lora_unfreeze_layers: " + std::to_string(unfrozen.size()) +
                        " base tensors train with the adapters (in the model dtype, saved in the adapter file): " +
                        list_some(unfrozen));
  }
  if (!spec.freeze.empty())
    out.log.push_back("warning: training.freeze_layers has no effect with LoRA (as in H2O: the base model is frozen "
                      "and the adapters train); use training.lora_unfreeze_layers, or training.lora: false");
}

// Full fine-tuning: everything but the frozen tensors (H2O's create_nlp_backbone).
void select_full(model::CausalLM& m, const TrainableSpec& spec, Trainable& out) {
  const auto named = m.named_parameters();
  std::vector<std::string> frozen;
  for (const auto& [name, p] : named) {
    const bool freeze = name_matches(name, spec.freeze);
    p.set_requires_grad(!freeze);
    if (freeze)
      frozen.push_back(name);
    else
      out.params.emplace_back(name, p);
  }
  LLMS_CHECK(!out.params.empty(), "training.freeze_layers freezes every parameter (", list_some(frozen),
             "); nothing would train. Remove entries, or use LoRA (training.lora: true)");
  if (!spec.freeze.empty()) {
    warn_unmatched("training.freeze_layers", spec.freeze, named, out.log);
    if (!frozen.empty())
      out.log.push_back("freeze_layers: " + std::to_string(frozen.size()) + " of " + std::to_string(named.size()) +
                        " tensors frozen: " + list_some(frozen));
  }
  if (!spec.unfreeze.empty())
    out.log.push_back("warning: training.lora_unfreeze_layers has no effect without LoRA (as in H2O): every "
                      "parameter trains except training.freeze_layers");
}

}  // namespace

bool name_matches(const std::string& name, const std::vector<std::string>& entries) {
  for (const auto& e : entries)
    if (!e.empty() && name.find(e) != std::string::npos) return true;
  return false;
}

TrainableSpec trainable_spec(const experiment::ExperimentConfig& cfg) {
  TrainableSpec s;
  const auto& t = cfg.training;
  s.lora = t.lora;
  s.lora_config.r = t.lora_r;
  s.lora_config.alpha = static_cast<double>(t.lora_alpha);
  s.lora_config.dropout = t.lora_dropout;
  s.lora_config.use_rslora = t.use_rslora;
  s.lora_config.use_dora = t.use_dora;
  s.lora_config.target_modules = t.lora_target_module_list();
  s.unfreeze = t.lora_unfreeze_layers;
  s.freeze = t.freeze_layers;
  s.attention_dropout = cfg.architecture.intermediate_dropout;
  return s;
}

Trainable setup_trainable(model::CausalLM& m, const TrainableSpec& spec, std::uint64_t seed) {
  Trainable out;
  out.lora_config = spec.lora_config;
  out.lora_config.saved_base_tensors.clear();
  if (spec.lora)
    select_lora(m, spec, seed, out);
  else
    select_full(m, spec, out);
  m.set_attention_dropout(spec.attention_dropout);
  if (spec.attention_dropout > 0)
    out.log.push_back("intermediate_dropout: attention dropout " + std::to_string(spec.attention_dropout) +
                      " in training (the Llama family's only backbone dropout, config.attention_dropout)");
  return out;
}

}  // namespace llmstudio::train
