// Experiment settings for the API: schema, request -> validated config, YAML -> JSON, diff (see config_schema.h).
#include "llmstudio/server/config_schema.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <set>

#include "llmstudio/io/json_text.h"
#include "llmstudio/server/api_error.h"

namespace llmstudio::server {
using nlohmann::json;

namespace {

struct KeyDoc {
  const char* key;  // "section.key"
  const char* help;
  std::vector<const char*> choices;  // non-empty: an enum
};

// Help texts and allowed values (the values experiment_config.cpp's validate() accepts).
const std::vector<KeyDoc>& key_docs() {
  static const std::vector<KeyDoc> docs = {
      {"dataset.validation_strategy", "automatic: hold out validation_size of the training data; custom: a separate file", {"automatic", "custom"}},
      {"dataset.validation_size", "Fraction of the training data held out for validation (automatic strategy)", {}},
      {"dataset.data_sample", "Fraction of the data used (1.0 = all)", {}},
      {"dataset.system_column", "Column with system prompts (None = no system prompts)", {}},
      {"dataset.prompt_column", "Column(s) joined into the prompt", {}},
      {"dataset.prompt_column_separator", "Separator between several prompt columns", {}},
      {"dataset.answer_column", "Column with the answers the model learns to write", {}},
      {"dataset.parent_id_column", "Column linking a row to the previous turn of its conversation (None = off)", {}},
      {"dataset.id_column", "Column with row ids (for parent_id chaining)", {}},
      {"dataset.text_system_start", "Marker before the system prompt", {}},
      {"dataset.text_prompt_start", "Marker before each prompt", {}},
      {"dataset.text_answer_separator", "Marker between prompt and answer", {}},
      {"dataset.mask_prompt_labels", "Compute the loss on answers only", {}},
      {"dataset.use_chat_template", "Lay samples out with the model's chat template instead of the markers", {}},
      {"tokenizer.max_length", "Longest sample in tokens (longer ones are cut)", {}},
      {"tokenizer.padding_quantile", "Pad batches to this quantile of their lengths", {}},
      {"architecture.backbone_dtype", "Weights dtype (auto: bfloat16 where the device supports it, else float32)",
       {"auto", "float32", "bfloat16", "float16"}},
      {"architecture.gradient_checkpointing", "Recompute activations in the backward pass to save memory", {}},
      {"training.loss_function", "Training loss", {"TokenAveragedCrossEntropy", "SampleAveragedCrossEntropy"}},
      {"training.optimizer", "Optimizer", {"AdamW", "Adam", "SGD", "RMSprop", "Adadelta"}},
      {"training.learning_rate", "Peak learning rate", {}},
      {"training.batch_size", "Samples per step (per accumulation step)", {}},
      {"training.epochs", "Passes over the training data", {}},
      {"training.schedule", "Learning-rate schedule", {"Cosine", "Linear", "Constant"}},
      {"training.warmup_epochs", "Epochs of linear warm-up", {}},
      {"training.weight_decay", "AdamW weight decay", {}},
      {"training.gradient_clip", "Clip the gradient norm to this (0 = off)", {}},
      {"training.grad_accumulation", "Batches accumulated per optimizer step", {}},
      {"training.lora", "Train a LoRA adapter (false: full fine-tuning)", {}},
      {"training.lora_r", "LoRA rank", {}},
      {"training.lora_alpha", "LoRA scaling numerator (scale = alpha / r)", {}},
      {"training.lora_dropout", "Dropout on the LoRA input", {}},
      {"training.lora_target_modules", "Comma-separated module names (empty = all linear layers)", {}},
      {"training.save_checkpoint", "Which weights to keep", {"last", "best", "each_evaluation_epoch", "disable"}},
      {"training.evaluation_epochs", "Validate every this many epochs", {}},
      {"prediction.metric", "Validation metric", {"Perplexity", "BLEU"}},
      {"prediction.max_length_inference", "Tokens generated at most for validation predictions", {}},
      {"prediction.do_sample", "Sample instead of greedy decoding", {}},
      {"prediction.temperature", "Sampling temperature", {}},
      {"environment.mixed_precision", "Compute in mixed precision where supported", {}},
      {"environment.mixed_precision_dtype", "Mixed-precision dtype", {"bfloat16", "float16"}},
      {"environment.seed", "Random seed (-1 = random, recorded)", {}},
      {"logging.logger", "External logger (only local logs here; others are ignored)", {"None", "Neptune", "W&B"}},
  };
  return docs;
}

const std::set<std::string> kManaged = {"dataset.train_dataframe", "dataset.validation_dataframe",
                                        "architecture.pretrained_weights"};

json scalar_to_json(const std::string& s) {
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  std::int64_t i;
  if (auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i); ec == std::errc() && p == s.data() + s.size() && !s.empty())
    return i;
  if (!s.empty() && (s.find('.') != std::string::npos || s.find('e') != std::string::npos) &&
      s.find_first_not_of("0123456789.eE+-") == std::string::npos) {
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end == s.c_str() + s.size()) return d;
  }
  return s;
}

json node_to_json(const YAML::Node& n) {
  if (!n || n.IsNull()) return "";
  if (n.IsScalar()) {
    // Quoted scalars stay strings ("1" in quotes is a string in YAML).
    return n.Tag() == "!" ? json(n.Scalar()) : scalar_to_json(n.Scalar());
  }
  if (n.IsSequence()) {
    json a = json::array();
    for (const auto& item : n) a.push_back(node_to_json(item));
    return a;
  }
  json o = json::object();
  for (const auto& kv : n) o[kv.first.as<std::string>()] = node_to_json(kv.second);
  return o;
}

std::string type_of(const json& v) {
  if (v.is_boolean()) return "bool";
  if (v.is_number_integer()) return "int";
  if (v.is_number()) return "float";
  if (v.is_array()) return "list";
  return "string";
}

}  // namespace

json config_yaml_to_json(const std::string& yaml_text) {
  YAML::Node root = YAML::Load(yaml_text);
  json out = json::object();
  if (!root.IsMap()) return out;
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (kv.second.IsMap()) out[k] = node_to_json(kv.second);
    else out[""][k] = node_to_json(kv.second);
  }
  return out;
}

json config_schema() {
  static const json schema = [] {
    // In cfg.yaml's order (H2O's), from the defaults of experiment::ExperimentConfig.
    const YAML::Node defaults = YAML::Load(experiment::to_yaml(experiment::ExperimentConfig{}));
    std::map<std::string, const KeyDoc*> docs;
    for (const auto& d : key_docs()) docs[d.key] = &d;
    json sections = json::array();
    for (const auto& sec : defaults) {
      const std::string section = sec.first.as<std::string>();
      if (!sec.second.IsMap()) continue;  // top level: name, paths, backbone, problem type: set by the studio
      json list = json::array();
      for (const auto& kv : sec.second) {
        const std::string key = kv.first.as<std::string>();
        const json value = node_to_json(kv.second);
        const std::string full = section + "." + key;
        if (kManaged.count(full)) continue;
        json k = {{"key", key}, {"type", type_of(value)}, {"default", value}, {"help", ""}};
        if (auto it = docs.find(full); it != docs.end()) {
          k["help"] = it->second->help;
          if (!it->second->choices.empty()) {
            k["type"] = "enum";
            k["choices"] = it->second->choices;
          }
        }
        list.push_back(std::move(k));
      }
      sections.push_back({{"name", section}, {"keys", std::move(list)}});
    }
    return json{{"sections", sections}};
  }();
  return schema;
}

experiment::ExperimentConfig config_from_request(const json& sections, const ManagedKeys& managed) {
  if (!sections.is_null() && !sections.is_object())
    api_fail(400, "config: expected an object of sections ({\"training\": {\"epochs\": 1}, ...})");
  json root = json::object();
  if (sections.is_object()) {
    for (const auto& [section, keys] : sections.items()) {
      if (!keys.is_object())
        api_fail(400, "config.", section, ": expected an object of keys, got ", io::json_preview(keys));
      for (const auto& [key, value] : keys.items()) {
        const std::string full = section + "." + key;
        const bool managed_key = kManaged.count(full) &&
                                 !(value.is_string() && (value == "" || value == "None") && full != "dataset.train_dataframe");
        if (managed_key) api_fail(400, "config key ", full, " is set by the studio (use dataset_id / llm_backbone)");
        if (value.is_null() || value.is_object())
          api_fail(400, "config key ", full, ": invalid value ", io::json_preview(value), "; expected a number, string, bool or list");
        root[section][key] = value;
      }
    }
  }
  root["experiment_name"] = managed.experiment_name;
  root["output_directory"] = managed.output_directory.string();
  root["llm_backbone"] = managed.llm_backbone.string();
  root["dataset"]["train_dataframe"] = managed.train_dataframe.string();
  // JSON is YAML: the request goes through the very parser and validation `llmstudio train -c` uses.
  try {
    auto cfg = experiment::parse_experiment_config(root.dump(), "request config");
    cfg.validate();
    return cfg;
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    api_fail(400, e.what());
  } catch (const YAML::Exception& e) {
    api_fail(400, "config: ", e.what());
  }
}

json config_diff(const std::map<std::string, json>& configs) {
  std::set<std::string> keys;
  auto flat = [](const json& cfg) {
    std::map<std::string, json> out;
    for (const auto& [s, kv] : cfg.items()) {
      if (!kv.is_object()) continue;
      for (const auto& [k, v] : kv.items()) out[s.empty() ? k : s + "." + k] = v;
    }
    return out;
  };
  std::map<std::string, std::map<std::string, json>> flats;
  for (const auto& [id, cfg] : configs) {
    flats[id] = flat(cfg);
    for (const auto& [k, _] : flats[id]) keys.insert(k);
  }
  json diff = json::array();
  for (const auto& key : keys) {
    if (key == "experiment_name" || key == "output_directory") continue;  // differ by construction
    json values = json::object();
    std::set<std::string> distinct;
    for (const auto& [id, f] : flats) {
      auto it = f.find(key);
      values[id] = it == f.end() ? json(nullptr) : it->second;
      distinct.insert(values[id].dump());
    }
    if (distinct.size() > 1) diff.push_back({{"key", key}, {"values", values}});
  }
  return diff;
}

}  // namespace llmstudio::server
