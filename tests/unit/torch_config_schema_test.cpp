// The experiment config's key table (experiment/config_schema.h): every H2O LLM Studio key of
// text_causal_language_modeling (tests/data/h2o_text_causal_lm_keys.txt) is implemented, ignored with a reason or
// refused, none silently dropped; every row has its help; docs/CONFIG.md is the generated reference.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/experiment/config_schema.h"
#include "llmstudio/experiment/experiment_config.h"

namespace fs = std::filesystem;
using namespace llmstudio::experiment;

namespace {

fs::path repo_root() { return fs::path(LLMS_SHARED_FIXTURES).parent_path().parent_path().parent_path(); }

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A config with `section.key: value` (YAML text) on top of the minimal valid one.
std::string config_with(const KeySpec& k, const std::string& value) {
  std::string top = "llm_backbone: /models/tiny\n", dataset = "dataset:\n  train_dataframe: data/train.csv\n", other;
  const std::string line = std::string(k.key) + ": " + value + "\n";
  if (k.section.empty()) {
    if (k.key == "llm_backbone") top.clear();
    top += line;
  } else if (k.section == "dataset") {
    if (k.key == "train_dataframe") dataset = "dataset:\n";
    dataset += "  " + line;
    if (k.key == "validation_strategy") dataset += "  validation_dataframe: data/validation.csv\n";  // custom needs it
  } else {
    other = std::string(k.section) + ":\n  " + line;
  }
  return top + dataset + other;
}

std::string yaml_quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// A valid value of an implemented key that differs from its default, as YAML text.
std::string other_value(const KeySpec& k) {
  const std::string def = default_text(k);
  switch (value_type(k)) {
    case ValueType::Bool: return def == "true" ? "false" : "true";
    case ValueType::Int: return std::to_string(std::stoll(def) + 1);
    case ValueType::Float: {
      if (!k.bounds) return "0.5";
      const double lo = k.bounds->lo, hi = k.bounds->hi;
      return std::isinf(hi) ? std::to_string(lo + 0.5) : std::to_string((lo + hi) / 2);
    }
    case ValueType::List: return k.choices.empty() ? "[walk_value]" : "[" + yaml_quoted(k.choices.front()) + "]";
    case ValueType::Choice:
      for (auto c : offered_choices(k))
        if (c != def) return yaml_quoted(c);
      return yaml_quoted(def);  // a single allowed value (problem_type)
    case ValueType::Text: return "walk_value";
  }
  return "";
}

// A value of an ignored/refused key that is not its inert one.
std::string non_inert_value(const KeySpec& k) {
  switch (k.h2o_type) {
    case ValueType::Bool: return k.inert == "true" ? "false" : "true";
    case ValueType::Int: return "7";
    case ValueType::Float: return "0.5";
    case ValueType::List: return "[walk_value]";
    default: return "walk_value";
  }
}

bool contains(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

std::string error_of(const std::string& yaml) {
  try {
    parse_experiment_config(yaml, "cfg.yaml");
  } catch (const llmstudio::Error& e) {
    return e.what();
  }
  return "";
}

// Walks one key: implemented keys keep a changed value through load and dump; ignored keys are noted (and warned
// about off their inert value) with a reason; refused keys accept only their inert value.
void walk_key(const KeySpec& k, std::map<KeyStatus, int>& counts) {
  const std::string full = dotted_key(k);
  ++counts[k.status];
  if (k.status == KeyStatus::Implemented) {
    const std::string value = other_value(k);
    const std::string yaml = config_with(k, value);
    bool refused = false;  // a value the table refuses (use_dora: true)
    for (const auto& s : k.special)
      refused = refused || (s.action == ValueAction::Refuse && (s.value == value || yaml_quoted(s.value) == value));
    if (refused) {
      const auto msg = error_of(yaml);
      EXPECT_NE(msg.find(full), std::string::npos) << msg;
      EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;
      return;
    }
    const auto c = parse_experiment_config(yaml, "cfg.yaml");
    EXPECT_FALSE(contains(c.ignored_keys, full)) << full;
    const std::string got = field_text(k, c);
    if (value_type(k) != ValueType::Choice || offered_choices(k).size() > 1)
      EXPECT_NE(got, default_text(k)) << full << ": the value " << value << " did not reach the field";
    // ... and the resolved config keeps it
    EXPECT_EQ(field_text(k, parse_experiment_config(to_yaml(c), "resolved")), got) << full;
    return;
  }
  EXPECT_FALSE(k.reason.empty()) << full << " is " << to_string(k.status) << " without a reason";
  const std::string inert = k.inert.empty() ? std::string(k.h2o_default.empty() ? "''" : k.h2o_default) : std::string(k.inert);
  const auto quiet = parse_experiment_config(config_with(k, inert), "cfg.yaml");
  EXPECT_TRUE(contains(quiet.ignored_keys, full)) << full << " was dropped without a note";
  EXPECT_FALSE(contains(quiet.warnings, full)) << full;
  if (k.inert.empty()) return;  // no value of it would change anything
  const std::string yaml = config_with(k, non_inert_value(k));
  if (k.status == KeyStatus::Refused) {
    const auto msg = error_of(yaml);
    EXPECT_NE(msg.find(full), std::string::npos) << msg;
    EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;
  } else {
    const auto c = parse_experiment_config(yaml, "cfg.yaml");
    EXPECT_TRUE(contains(c.warnings, full + ": ")) << full;
    EXPECT_TRUE(contains(c.warnings, std::string(k.reason))) << full;
  }
}

}  // namespace

TEST(ConfigSchema, EveryH2OKeyIsImplementedIgnoredWithAReasonOrRefused) {
  const auto path = repo_root() / "tests" / "data" / "h2o_text_causal_lm_keys.txt";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::map<KeyStatus, int> counts;
  int keys = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    ++keys;
    const auto dot = line.find('.');
    const std::string section = dot == std::string::npos ? "" : line.substr(0, dot);
    const std::string key = dot == std::string::npos ? line : line.substr(dot + 1);
    const KeySpec* k = find_key(section, key);
    ASSERT_NE(k, nullptr) << "H2O key " << line << " has no row in the key table (experiment/config_schema.cpp)";
    SCOPED_TRACE(line);
    walk_key(*k, counts);
  }
  std::cout << "H2O keys: " << keys << " (" << counts[KeyStatus::Implemented] << " implemented, "
            << counts[KeyStatus::Ignored] << " ignored, " << counts[KeyStatus::Refused] << " refused)\n";
  EXPECT_GE(keys, 100);
}

TEST(ConfigSchema, EveryRowHasHelpAndTheIgnoredOnesAReason) {
  std::map<std::string, int> seen;
  for (const auto& k : config_keys()) {
    const std::string full = dotted_key(k);
    EXPECT_EQ(++seen[full], 1) << full << " has two rows";
    EXPECT_FALSE(k.help.empty()) << full;
    EXPECT_EQ(k.status == KeyStatus::Implemented, k.field != nullptr) << full;
    if (k.status != KeyStatus::Implemented) EXPECT_FALSE(k.reason.empty()) << full;
    if (k.status == KeyStatus::Refused) EXPECT_FALSE(k.inert.empty()) << full;
    for (const auto& s : k.special) {
      EXPECT_FALSE(s.reason.empty()) << full << " " << s.value;
      if (!k.choices.empty())
        EXPECT_NE(std::find(k.choices.begin(), k.choices.end(), s.value), k.choices.end()) << full << " " << s.value;
    }
    if (k.status == KeyStatus::Implemented && !k.choices.empty() && value_type(k) != ValueType::List) {
      const auto offered = offered_choices(k);
      EXPECT_NE(std::find(offered.begin(), offered.end(), default_text(k)), offered.end()) << full;
    }
  }
  // The defaults validate (llm_backbone aside, which has none).
  EXPECT_NO_THROW(parse_experiment_config("llm_backbone: /m\n", "defaults"));
}

TEST(ConfigSchema, DocsConfigMdIsTheGeneratedReference) {
  const auto path = repo_root() / "docs" / "CONFIG.md";
  const std::string generated = config_reference_markdown();
  EXPECT_EQ(read_text(path), generated)
      << path << " differs from the key table; regenerate it: build/bin/llmstudio config docs > docs/CONFIG.md";
  for (const auto& k : config_keys())
    EXPECT_NE(generated.find("| `" + std::string(k.key) + "` |"), std::string::npos) << dotted_key(k);
}

namespace {
template <typename E>
void expect_round_trip(std::size_t count) {
  ASSERT_EQ(EnumNames<E>::names.size(), count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto e = static_cast<E>(i);
    EXPECT_EQ(enum_from_string<E>(to_string(e)), e) << to_string(e);
  }
  EXPECT_FALSE(enum_from_string<E>("no such value").has_value());
}
}  // namespace

TEST(ConfigSchema, ValuesWithChoicesParseToEnums) {
  expect_round_trip<ValidationStrategy>(2);
  expect_round_trip<BackboneDtype>(6);
  expect_round_trip<LossFunction>(2);
  expect_round_trip<OptimizerKind>(6);
  expect_round_trip<ScheduleKind>(3);
  expect_round_trip<SaveCheckpoint>(4);
  expect_round_trip<MetricKind>(3);
  expect_round_trip<MixedPrecisionDtype>(2);
  expect_round_trip<LoggerKind>(3);
  const auto c = parse_experiment_config(
      "llm_backbone: /m\ndataset:\n  train_dataframe: t.csv\n  validation_strategy: custom\n  validation_dataframe: v.csv\n"
      "architecture:\n  backbone_dtype: float16\ntraining:\n  optimizer: Adadelta\n  schedule: Linear\n"
      "  loss_function: SampleAveragedCrossEntropy\n  save_checkpoint: each_evaluation_epoch\n"
      "prediction:\n  metric: BLEU\nenvironment:\n  mixed_precision_dtype: float16\nlogging:\n  logger: W&B\n",
      "cfg.yaml");
  EXPECT_EQ(c.dataset.validation_strategy, ValidationStrategy::Custom);
  EXPECT_EQ(c.architecture.backbone_dtype, BackboneDtype::Float16);
  EXPECT_EQ(c.training.optimizer, OptimizerKind::Adadelta);
  EXPECT_EQ(c.training.schedule, ScheduleKind::Linear);
  EXPECT_EQ(c.training.loss_function, LossFunction::SampleAveraged);
  EXPECT_EQ(c.training.save_checkpoint, SaveCheckpoint::EachEvaluationEpoch);
  EXPECT_EQ(c.prediction.metric, MetricKind::BLEU);
  EXPECT_EQ(c.environment.mixed_precision_dtype, MixedPrecisionDtype::Float16);
  EXPECT_EQ(c.logging.logger, LoggerKind::WandB);
  // Written back with the table's names; an unknown name is refused with the allowed ones (refused names left out).
  const std::string yaml = to_yaml(c);
  for (const char* line : {"optimizer: Adadelta", "save_checkpoint: each_evaluation_epoch", "logger: W&B"})
    EXPECT_NE(yaml.find(line), std::string::npos) << line;
  const auto msg = error_of("llm_backbone: /m\ntraining:\n  optimizer: Lion\n");
  EXPECT_NE(msg.find("training.optimizer: invalid value \"Lion\"; allowed values: AdamW, Adam, SGD, RMSprop, Adadelta"),
            std::string::npos)
      << msg;
  // Every key whose field is an enum offers the enum's names.
  const KeySpec* opt = find_key("training", "optimizer");
  ASSERT_NE(opt, nullptr);
  EXPECT_EQ(value_type(*opt), ValueType::Choice);
  EXPECT_EQ(opt->choices.size(), EnumNames<OptimizerKind>::names.size());
}
