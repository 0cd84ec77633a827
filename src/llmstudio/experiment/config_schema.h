// The one table of experiment config keys: for every key that H2O LLM Studio's cfg.yaml may hold (and the few
// llmstudio adds), its section, the field it sets (with that the type and default), the allowed values or range,
// a help text and its status: implemented, warned-and-ignored (with the reason) or refused (with the reason).
// experiment_config.cpp parses, validates, overrides (`--set`), warns and dumps from it; the studio's JSON schema
// (server/config_schema.cpp, the experiment form with its tooltips) and docs/CONFIG.md are generated from it.
// No YAML or JSON here.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "llmstudio/experiment/config_enums.h"

namespace llmstudio::experiment {

struct ExperimentConfig;

enum class KeyStatus {
  Implemented,  // read by llmstudio; does what H2O's key does
  Ignored,      // accepted without effect, with a warning when its value would have changed H2O's behaviour
  Refused,      // accepted only at its inert value; any other value is an error ("not supported yet")
};
enum class ValueType { Text, Bool, Int, Float, List, Choice };

// A field whose value is one of the row's `choices` (an enum, by index into the names).
struct ChoiceRef {
  void* field;
  std::size_t (*get)(const void*);
  void (*set)(void*, std::size_t);
};
template <typename E>
ChoiceRef choice_ref(E& e) {
  return {&e, [](const void* p) { return static_cast<std::size_t>(*static_cast<const E*>(p)); },
          [](void* p, std::size_t i) { *static_cast<E*>(p) = static_cast<E>(i); }};
}

// The field of ExperimentConfig a key sets.
using FieldRef = std::variant<std::string*, bool*, std::int64_t*, double*, std::vector<std::string>*, ChoiceRef>;

// Allowed range of a number (inclusive unless open); hi = inf: no upper bound.
struct Bounds {
  double lo, hi;
  bool lo_open = false, hi_open = false;
};

// A value of an implemented key that is not simply accepted.
enum class ValueAction {
  Refuse,   // validate() refuses it ("not supported yet") with `hint`
  Replace,  // replaced by the key's default, with a warning
  Ignore,   // kept (and written back), with a warning that it has no effect here
};
struct SpecialValue {
  std::string_view value;
  ValueAction action;
  std::string_view reason;
  std::string_view hint = "";
};

struct KeySpec {
  std::string_view section;  // "" = top level
  std::string_view key;
  KeyStatus status = KeyStatus::Implemented;
  std::string_view help;
  // Implemented keys: the field (type and default come from it).
  FieldRef (*field)(ExperimentConfig&) = nullptr;
  std::span<const std::string_view> choices = {};  // allowed values (of the value, or of each list item)
  std::optional<Bounds> bounds = std::nullopt;
  std::vector<SpecialValue> special = {};
  // Ignored and refused keys: H2O's type and default (YAML text), the value that changes nothing ("" = any value
  // is without effect, noted but never warned about) and why the key has no effect or is refused.
  ValueType h2o_type = ValueType::Text;
  std::string_view h2o_default = "";
  std::string_view inert = "";
  std::string_view reason = "";
};

// Every key, in cfg.yaml's order (top level, then the sections); implemented keys in the order to_yaml writes them.
const std::vector<KeySpec>& config_keys();
// The sections in order ("" = top level first).
const std::vector<std::string_view>& config_sections();
// The row of section.key, or nullptr.
const KeySpec* find_key(std::string_view section, std::string_view key);

std::string dotted_key(const KeySpec& k);  // "training.optimizer", or "llm_backbone" at the top level
ValueType value_type(const KeySpec& k);
std::string_view to_string(KeyStatus s);  // implemented | ignored | refused
std::string_view to_string(ValueType t);  // string | bool | int | float | list | enum
// The allowed values offered to users: `choices` without the refused and replaced ones.
std::vector<std::string_view> offered_choices(const KeySpec& k);
// The value of an implemented key's field in `cfg` as YAML text (lists as "[a, b]").
std::string field_text(const KeySpec& k, const ExperimentConfig& cfg);
// The default as YAML text (lists as "[a, b]"): ExperimentConfig's for implemented keys, H2O's for the others.
std::string default_text(const KeySpec& k);
// The allowed range as text ("[1, 65536]", "(0.0, 1.0]", ">= -1"), "" without bounds.
std::string bounds_text(const KeySpec& k);

// docs/CONFIG.md: every key of the table by section, as Markdown.
std::string config_reference_markdown();

}  // namespace llmstudio::experiment
