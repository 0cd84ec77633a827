// Typed access to tokenizer.json / tokenizer_config.json fields with errors that name the file, the component
// and the key, what was expected and what was found (header-only; used by every component factory).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "llmstudio/core/error.h"

namespace llmstudio::tokenizer::json_util {

using json = nlohmann::json;

inline const char* kind_of(const json& j) { return j.type_name(); }

// The "type" of a component object, e.g. "BPE", "Split".
inline std::string component_type(const json& j, const std::string& where) {
  LLMS_CHECK(j.is_object(), where, ": expected an object, found ", kind_of(j));
  auto it = j.find("type");
  LLMS_CHECK(it != j.end() && it->is_string(), where, ": missing string field \"type\"");
  return it->get<std::string>();
}

inline const json& require(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  LLMS_CHECK(it != j.end(), where, ": missing field \"", key, "\"");
  return *it;
}

inline std::string get_string(const json& j, const char* key, const std::string& where) {
  const json& v = require(j, key, where);
  LLMS_CHECK(v.is_string(), where, ": field \"", key, "\" must be a string, found ", kind_of(v));
  return v.get<std::string>();
}

inline std::string get_string_or(const json& j, const char* key, const std::string& fallback,
                                 const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  LLMS_CHECK(it->is_string(), where, ": field \"", key, "\" must be a string, found ", kind_of(*it));
  return it->get<std::string>();
}

inline bool get_bool_or(const json& j, const char* key, bool fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  LLMS_CHECK(it->is_boolean(), where, ": field \"", key, "\" must be a boolean, found ", kind_of(*it));
  return it->get<bool>();
}

inline int64_t get_int_or(const json& j, const char* key, int64_t fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  LLMS_CHECK(it->is_number_integer(), where, ": field \"", key, "\" must be an integer, found ", kind_of(*it));
  return it->get<int64_t>();
}

inline const json& get_array(const json& j, const char* key, const std::string& where) {
  const json& v = require(j, key, where);
  LLMS_CHECK(v.is_array(), where, ": field \"", key, "\" must be an array, found ", kind_of(v));
  return v;
}

}  // namespace llmstudio::tokenizer::json_util
