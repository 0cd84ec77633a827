// Experiment settings for the API: schema, request -> validated config, YAML -> JSON, diff (see config_schema.h).
#include "llmstudio/server/config_schema.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <set>

#include "llmstudio/experiment/config_schema.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/server/api_error.h"

namespace llmstudio::server {
using nlohmann::json;

namespace {

// Keys the request may not set (the studio fills in the dataset; the others need files it does not offer yet).
const std::set<std::string> kManaged = {"dataset.train_dataframe", "dataset.validation_dataframe",
                                        "architecture.pretrained_weights"};
// Top-level keys the studio sets itself (config_from_request overwrites them).
const std::set<std::string> kStudioKeys = {"experiment_name", "output_directory", "llm_backbone"};

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

// An implemented key's value in `cfg`, typed.
json field_json(const experiment::KeySpec& k, const experiment::ExperimentConfig& cfg) {
  using experiment::ValueType;
  const std::string text = experiment::field_text(k, cfg);
  switch (experiment::value_type(k)) {
    case ValueType::List: return node_to_json(YAML::Load(text));
    case ValueType::Text:
    case ValueType::Choice: return text;
    case ValueType::Bool:
    case ValueType::Int:
    case ValueType::Float: return scalar_to_json(text);
  }
  return text;
}

// One key of the table as the form needs it.
json key_json(const experiment::KeySpec& k) {
  using experiment::KeyStatus;
  static const experiment::ExperimentConfig defaults;
  json out = {{"key", std::string(k.key)},
              {"type", std::string(experiment::to_string(experiment::value_type(k)))},
              {"help", std::string(k.help)},
              {"status", std::string(experiment::to_string(k.status))}};
  if (k.status == KeyStatus::Implemented) {
    out["default"] = field_json(k, defaults);
  } else {
    out["default"] = k.h2o_default.empty() ? json("") : node_to_json(YAML::Load(std::string(k.h2o_default)));
    out["reason"] = std::string(k.reason);
  }
  if (!k.choices.empty()) {
    json choices = json::array();
    for (auto c : experiment::offered_choices(k)) choices.push_back(std::string(c));
    out["choices"] = choices;
  }
  if (k.bounds) out["range"] = experiment::bounds_text(k);
  const std::string full = experiment::dotted_key(k);
  if (kManaged.count(full) || kStudioKeys.count(full)) out["managed"] = true;
  return out;
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
    json sections = json::array();
    for (auto section : experiment::config_sections()) {
      json keys = json::array();
      for (const auto& k : experiment::config_keys())
        if (k.section == section) keys.push_back(key_json(k));
      sections.push_back({{"name", std::string(section)}, {"title", section.empty() ? "general" : std::string(section)},
                          {"keys", std::move(keys)}});
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
