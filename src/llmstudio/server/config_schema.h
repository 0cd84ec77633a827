// The experiment settings as the studio's API sees them: the schema the create form is built from (every key of
// experiment/config_schema.h's table by section with its type, default, allowed values or range, help and status;
// defaults come from experiment::ExperimentConfig's own, so they cannot drift from the CLI), the translation of a request's
// {"section": {"key": value}} into a validated experiment::ExperimentConfig (the same parser and validate() as
// `llmstudio train`), a YAML config back to JSON, and the differences between several configs.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>

#include "llmstudio/experiment/experiment_config.h"

namespace llmstudio::server {

// {"sections": [{"name": "training", "title", "keys": [{"key", "type", "default", "help", "status", "choices"?,
// "range"?, "reason"? (ignored/refused keys), "managed"? (set by the studio, not by the form's fields)}]}]}; the
// top-level keys are the section named "" (title "general"). Every key of the table is listed.
nlohmann::json config_schema();

// What the studio fills in itself; the request may not set these keys.
struct ManagedKeys {
  std::string experiment_name;
  std::filesystem::path output_directory;
  std::filesystem::path llm_backbone;
  std::filesystem::path train_dataframe;
};

// Builds and validates the config of a new experiment. Throws ApiError 400 naming the key, the value and the
// allowed values (the message of experiment::ExperimentConfig::validate()) for bad settings.
experiment::ExperimentConfig config_from_request(const nlohmann::json& sections, const ManagedKeys& managed);

// A cfg.yaml as {"section": {"key": value}} ("" holds the top-level keys), scalars typed (bool, int, float,
// string) and lists as arrays.
nlohmann::json config_yaml_to_json(const std::string& yaml_text);

// [{"key": "training.learning_rate", "values": {"<id>": value, ...}}] for the keys whose values differ.
nlohmann::json config_diff(const std::map<std::string, nlohmann::json>& configs);

}  // namespace llmstudio::server
