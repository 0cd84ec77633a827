// LoRA adapters (see lora.h).
#include "llmstudio/model/lora.h"

#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/architecture.h"
#include "llmstudio/model/dora.h"
#include "llmstudio/model/layer_schema.h"

namespace llmstudio::model {
namespace {

const std::string kPeftPrefix = "base_model.model.";

// "q_proj, k_proj, ..." for messages.
std::string join(const std::vector<std::string>& names) {
  std::string r;
  for (const auto& n : names) r += (r.empty() ? "" : ", ") + n;
  return r;
}

// "base_model.model.model.layers.<i>.<module path>.<leaf>"
std::string peft_name(std::size_t layer, const LayerTensor& t, const std::string& leaf) {
  return kPeftPrefix + WeightNames::layer(static_cast<long>(layer), module_path(t) + "." + leaf);
}

// Calls fn(layer index, schema row of the projection's weight, linear) for every projection with an adapter.
template <class Fn>
void for_each_adapter(const CausalLM& model, Fn fn) {
  auto& layers = const_cast<CausalLM&>(model).layers();
  const auto targets = lora_targets(model.layer_schema());
  for (std::size_t i = 0; i < layers.size(); ++i)
    for (const LayerTensor* t : targets) {
      Linear& lin = *layer_linear(layers[i], t->role);
      if (lin.lora_a.defined()) fn(i, *t, lin);
    }
}

nlohmann::json adapter_config_json(const LoraConfig& config, const std::string& base_model_name_or_path) {
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", base_model_name_or_path},
          {"r", config.r},
          {"lora_alpha", config.alpha},
          {"lora_dropout", config.dropout},
          {"target_modules", config.resolved_targets()},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"inference_mode", true},
          {"init_lora_weights", true},
          {"use_rslora", config.use_rslora},
          {"use_dora", config.use_dora},
          {"modules_to_save", nullptr},
          {"layers_to_transform", nullptr},
          {"rank_pattern", nlohmann::json::object()},
          {"alpha_pattern", nlohmann::json::object()}};
}

LoraConfig parse_adapter_config(const std::filesystem::path& cfg_file) {
  const nlohmann::json j = io::parse_json(io::read_file(cfg_file), cfg_file.string(), io::kModelJsonMaxDepth);
  LLMS_CHECK(j.value("peft_type", "") == "LORA", cfg_file.string(), ": peft_type must be LORA, found ",
             j.value("peft_type", std::string("(none)")));
  auto flag = [&](const char* key) {
    if (!j.contains(key) || j[key].is_null()) return false;
    LLMS_CHECK(j[key].is_boolean(), cfg_file.string(), ": ", key, " must be true or false, found ", j[key].dump());
    return j[key].get<bool>();
  };
  LoraConfig c;
  c.r = j.at("r").get<std::int64_t>();
  c.alpha = j.at("lora_alpha").get<double>();
  c.dropout = j.value("lora_dropout", 0.0);
  c.use_rslora = flag("use_rslora");
  c.use_dora = flag("use_dora");
  const auto& tm = j.at("target_modules");
  if (tm.is_string()) {
    LLMS_CHECK(tm.get<std::string>() == "all-linear", cfg_file.string(), ": target_modules '", tm.get<std::string>(),
               "' is not supported; give a list of module names");
  } else {
    c.target_modules = tm.get<std::vector<std::string>>();
  }
  return c;
}

}  // namespace

// The config has no architecture: target names are the Llama family's (every supported architecture's).
std::vector<std::string> LoraConfig::resolved_targets() const {
  if (!target_modules.empty()) return target_modules;
  return lora_target_names(llama_layer_schema());
}

double LoraConfig::scaling() const {
  const double rank = static_cast<double>(r);
  return alpha / (use_rslora ? std::sqrt(rank) : rank);
}

void LoraConfig::validate() const {
  LLMS_CHECK(r >= 1, "lora_r must be >= 1, found ", r);
  LLMS_CHECK(alpha > 0, "lora_alpha must be > 0, found ", alpha);
  LLMS_CHECK(dropout >= 0 && dropout < 1, "lora_dropout must be in [0, 1), found ", dropout);
  const LayerSchema& schema = llama_layer_schema();
  for (const auto& t : target_modules)
    LLMS_CHECK(lora_target(schema, t) != nullptr, "lora_target_modules: unknown module '", t,
               "'; allowed: ", join(lora_target_names(schema)), " (empty = all)");
}

void attach_lora(CausalLM& model, const LoraConfig& config, std::uint64_t seed) {
  config.validate();
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(seed);
  for (auto& [name, p] : model.named_parameters()) p.set_requires_grad(false);
  const auto targets = config.resolved_targets();
  const auto fopts = at::TensorOptions().dtype(at::kFloat).device(model.device());
  for (auto& layer : model.layers()) {
    for (const LayerTensor* p : lora_targets(model.layer_schema())) {
      if (std::find(targets.begin(), targets.end(), p->lora_name) == targets.end()) continue;
      Linear& lin = *layer_linear(layer, p->role);
      const std::int64_t in = lin.weight.size(1), out = lin.weight.size(0);
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      at::Tensor a = at::empty({config.r, in}, at::kFloat).uniform_(-bound, bound, gen);
      lin.lora_a = a.to(model.device()).set_requires_grad(true);
      lin.lora_b = at::zeros({out, config.r}, fopts).set_requires_grad(true);
      lin.lora_scaling = config.scaling();
      lin.lora_dropout = config.dropout;
      lin.lora_magnitude = at::Tensor();
      if (config.use_dora) lin.lora_magnitude = dora_weight_norm(lin).clone().set_requires_grad(true);
    }
  }
}

NamedTensorList lora_parameters(const CausalLM& model) {
  NamedTensorList out;
  for_each_adapter(model, [&](std::size_t i, const LayerTensor& p, const Linear& lin) {
    out.emplace_back(peft_name(i, p, "lora_A.weight"), lin.lora_a);
    out.emplace_back(peft_name(i, p, "lora_B.weight"), lin.lora_b);
    if (lin.lora_magnitude.defined()) out.emplace_back(peft_name(i, p, "lora_magnitude_vector"), lin.lora_magnitude);
  });
  return out;
}

NamedTensorList peft_base_parameters(const CausalLM& model) {
  std::set<std::string> wrapped;  // "model.layers.<i>.<path>." of projections with an adapter
  for_each_adapter(model, [&](std::size_t i, const LayerTensor& p, const Linear&) {
    wrapped.insert(WeightNames::layer(static_cast<long>(i), module_path(p)) + ".");
  });
  NamedTensorList out;
  for (auto& [name, t] : model.named_parameters()) {
    const auto dot = name.rfind('.');
    const std::string owner = name.substr(0, dot + 1);
    out.emplace_back(kPeftPrefix + (wrapped.count(owner) ? owner + "base_layer" + name.substr(dot) : name), t);
  }
  return out;
}

NamedTensorList adapter_tensors(const CausalLM& model, const LoraConfig& config) {
  NamedTensorList out = lora_parameters(model);
  const std::set<std::string> saved(config.saved_base_tensors.begin(), config.saved_base_tensors.end());
  const auto hf = model.named_parameters();
  const auto peft = peft_base_parameters(model);
  std::size_t found = 0;
  for (std::size_t i = 0; i < hf.size(); ++i)
    if (saved.count(hf[i].first)) {
      out.push_back(peft[i]);
      ++found;
    }
  LLMS_CHECK(found == saved.size(), "adapter: ", saved.size() - found,
             " of the base tensors to save with it are not parameters of the model");
  return out;
}

void load_lora_weights(CausalLM& model, const std::map<std::string, at::Tensor>& tensors, const std::string& source) {
  at::NoGradGuard no_grad;
  auto params = lora_parameters(model);
  LLMS_CHECK(!params.empty(), source, ": the model has no LoRA adapters attached");
  for (auto& [name, p] : params) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {  // the in-memory names of PEFT's state_dict
      const bool magnitude = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") != 0;
      it = tensors.find(magnitude ? name + ".default.weight" : name.substr(0, name.size() - 7) + ".default.weight");
    }
    LLMS_CHECK(it != tensors.end(), source, ": missing adapter tensor ", name,
               name.find("magnitude") != std::string::npos ? " (the adapter_config says use_dora: true)" : "");
    LLMS_CHECK(it->second.sizes() == p.sizes(), source, ": adapter tensor ", name, " has shape ", it->second.sizes(),
               ", expected ", p.sizes(), " (does lora_r match?)");
    p.copy_(it->second);
  }
}

void save_peft_adapter(const CausalLM& model, const LoraConfig& config, const std::filesystem::path& dir,
                       const std::string& base_model_name_or_path) {
  std::filesystem::create_directories(dir);
  io::NamedTensors tensors;
  for (auto& [name, t] : adapter_tensors(model, config)) tensors.emplace_back(name, t.detach());
  LLMS_CHECK(!lora_parameters(model).empty(), "save_peft_adapter: the model has no LoRA adapters");
  io::save_safetensors(dir / "adapter_model.safetensors", tensors, {{"format", "pt"}});
  io::write_file_atomic(dir / "adapter_config.json", adapter_config_json(config, base_model_name_or_path).dump(2) + "\n");
}

LoraConfig load_peft_adapter(CausalLM& model, const std::filesystem::path& dir) {
  const auto cfg_file = dir / "adapter_config.json";
  LLMS_CHECK(std::filesystem::exists(cfg_file), "no adapter_config.json in ", dir, " (expected a PEFT LoRA adapter)");
  LoraConfig c = parse_adapter_config(cfg_file);
  attach_lora(model, c, 0);
  const auto file = dir / "adapter_model.safetensors";
  const auto tensors = io::load_safetensors_dir(file);
  load_lora_weights(model, tensors, file.string());
  // The rest: base-model tensors saved with the adapter (PEFT's modules_to_save names, our lora_unfreeze_layers).
  std::set<std::string> adapter_names;
  for (const auto& [name, t] : lora_parameters(model)) adapter_names.insert(name);
  const auto hf = model.named_parameters();
  const auto peft = peft_base_parameters(model);
  at::NoGradGuard no_grad;
  for (const auto& [name, t] : tensors) {
    if (adapter_names.count(name)) continue;
    std::size_t i = 0;
    while (i < peft.size() && peft[i].first != name) ++i;
    LLMS_CHECK(i < peft.size(), file.string(), ": tensor ", name,
               " is neither a LoRA adapter of the configured target_modules nor a parameter of the base model",
               " (an adapter for another model or a PEFT feature not supported here)");
    LLMS_CHECK(t.sizes() == peft[i].second.sizes(), file.string(), ": base tensor ", name, " has shape ", t.sizes(),
               ", the model's is ", peft[i].second.sizes());
    peft[i].second.copy_(t);
    c.saved_base_tensors.push_back(hf[i].first);
  }
  return c;
}

void merge_lora(CausalLM& model) {
  at::NoGradGuard no_grad;
  for (auto& layer : model.layers())
    for (const Linear* p : layer_linears(model.layer_schema(), layer)) {
      Linear& lin = const_cast<Linear&>(*p);
      if (!lin.lora_a.defined()) continue;
      if (lin.lora_magnitude.defined()) {
        lin.weight = dora_merged_weight(lin);
      } else {
        at::Tensor delta = at::matmul(lin.lora_b.to(at::kFloat), lin.lora_a.to(at::kFloat)) * lin.lora_scaling;
        lin.weight = (lin.weight.to(at::kFloat) + delta).to(lin.weight.scalar_type());
      }
      lin.lora_a = at::Tensor();
      lin.lora_b = at::Tensor();
      lin.lora_magnitude = at::Tensor();
      lin.lora_scaling = 0;
    }
}

}  // namespace llmstudio::model
