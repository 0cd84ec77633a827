// Experiment config: YAML loading and dumping, overrides, validation, all driven by the key table (config_schema.h).
#include "llmstudio/experiment/experiment_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>

#include "llmstudio/core/error.h"
#include "llmstudio/data/table.h"
#include "llmstudio/experiment/config_schema.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::experiment {
namespace {

using StringList = std::vector<std::string>;

// ---- the key table (config_schema.h) ----------------------------------------------------------------------

bool is_section(const std::string& name) {
  const auto& sections = config_sections();
  return !name.empty() && std::find(sections.begin(), sections.end(), name) != sections.end();
}

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

std::string join(const StringList& v, const char* sep = ", ") {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

StringList all_keys() {  // the implemented ones (suggestions for unknown keys)
  StringList keys;
  for (const auto& k : config_keys())
    if (k.status == KeyStatus::Implemented) keys.push_back(dotted_key(k));
  return keys;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string join_views(const std::vector<std::string_view>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::string(v[i]);
  return out;
}

std::string suggestion(const std::string& key) {
  std::string best;
  std::size_t best_d = 4;  // only close matches
  for (const auto& k : all_keys()) {
    std::size_t d = edit_distance(key, k);
    auto dot = k.find('.');  // also compare without the section, for a key in the wrong section
    if (dot != std::string::npos) d = std::min(d, edit_distance(key.substr(key.find('.') + 1), k.substr(dot + 1)));
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? "" : " (did you mean " + best + "?)";
}

// ---- typed values -------------------------------------------------------------------------------------------

[[noreturn]] void bad_value(const std::string& key, const std::string& value, const std::string& expected) {
  fail(key, ": invalid value \"", value, "\"; expected ", expected);
}

void parse_text(const std::string& key, const std::string& text, std::string& out) {
  (void)key;
  out = text;
}
void parse_text(const std::string& key, const std::string& text, bool& out) {
  static const StringList t = {"true", "True", "TRUE", "yes", "Yes", "on"}, f = {"false", "False", "FALSE", "no", "No", "off"};
  if (std::find(t.begin(), t.end(), text) != t.end()) out = true;
  else if (std::find(f.begin(), f.end(), text) != f.end()) out = false;
  else bad_value(key, text, "true or false");
}
void parse_text(const std::string& key, const std::string& text, int64_t& out) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    // H2O writes some integers as floats (1000000.0); accept integral floats
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || d != std::floor(d) || std::fabs(d) > 9e15) bad_value(key, text, "an integer");
    v = static_cast<int64_t>(d);
  }
  out = v;
}
void parse_text(const std::string& key, const std::string& text, double& out) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v)) bad_value(key, text, "a number");
  out = v;
}
void parse_text(const std::string& key, const std::string& text, StringList& out) {
  (void)key;
  out.clear();  // "a,b" -> [a, b]; "" -> []
  std::size_t pos = 0;
  while (pos <= text.size() && !text.empty()) {
    std::size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
}

std::string node_text(const YAML::Node& n) {
  if (!n || n.IsNull()) return "";
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

template <typename T>
void parse_node(const std::string& key, const YAML::Node& n, T& out) {
  if constexpr (std::is_same_v<T, StringList>) {
    if (n.IsSequence()) {
      out.clear();
      for (const auto& item : n) {
        if (!item.IsScalar()) bad_value(key, node_text(n), "a list of names");
        out.push_back(item.Scalar());
      }
      return;
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (n.IsSequence()) {  // H2O accepts lists for some text keys (lora_target_modules): join with commas
      StringList items;
      parse_node(key, n, items);
      out = join(items, ",");
      return;
    }
  }
  if (n.IsMap() || n.IsSequence()) bad_value(key, node_text(n), "a single value");
  parse_text(key, node_text(n), out);
}

// A list key's YAML/--set text and a choice key's value, typed by the row.
void parse_field(const KeySpec& k, const FieldRef& f, const YAML::Node* node, const std::string* text) {
  const std::string full = dotted_key(k);
  std::visit(Overloaded{
                 [&](ChoiceRef r) {
                   std::string v;
                   if (node) parse_node(full, *node, v);
                   else v = *text;
                   const auto it = std::find(k.choices.begin(), k.choices.end(), v);
                   if (it == k.choices.end())
                     fail(full, ": invalid value \"", v, "\"; allowed values: ", join_views(offered_choices(k)));
                   r.set(r.field, static_cast<std::size_t>(it - k.choices.begin()));
                 },
                 [&](auto* p) {
                   using T = std::remove_pointer_t<decltype(p)>;
                   if (node) parse_node(full, *node, *p);
                   else if (std::is_same_v<T, StringList> && !text->empty() && text->front() == '[')
                     parse_node(full, YAML::Load(*text), *p);
                   else parse_text(full, *text, *p);
                 },
             },
             f);
}

// ---- output -------------------------------------------------------------------------------------------------

// One key's value: lists as YAML sequences, the rest as the table's text of it (floats as PyYAML writes them).
void emit_field(YAML::Emitter& e, const KeySpec& k, const ExperimentConfig& cfg) {
  const FieldRef f = k.field(const_cast<ExperimentConfig&>(cfg));  // read only
  if (auto* list = std::get_if<StringList*>(&f)) {
    e << YAML::Value << YAML::BeginSeq;
    for (const auto& s : **list) e << s;
    e << YAML::EndSeq;
  } else {
    e << YAML::Value << field_text(k, cfg);
  }
}

// ---- validation from the table ------------------------------------------------------------------------------

[[noreturn]] void not_supported(const std::string& key, const std::string& v, std::string_view what,
                                std::string_view hint) {
  fail(key, ": \"", v, "\" is not supported yet (", what, ")\n  hint: ", hint);
}

void check_bounds(const KeySpec& k, double v) {
  const Bounds& b = *k.bounds;
  const bool ok = (b.lo_open ? v > b.lo : v >= b.lo) && (b.hi_open ? v < b.hi : v <= b.hi);
  if (ok) return;
  const std::string range = bounds_text(k);
  if (value_type(k) == ValueType::Int) {
    if (range.rfind(">=", 0) == 0) fail(dotted_key(k), ": invalid value ", int64_t(v), "; must be at least ", int64_t(b.lo));
    fail(dotted_key(k), ": invalid value ", int64_t(v), "; allowed range ", range);
  }
  fail(dotted_key(k), ": invalid value ", data::format_python_float(v), "; allowed range ", range);
}

// The table's rules for one implemented key: refused values, allowed values, range.
void check_key(const KeySpec& k, const ExperimentConfig& cfg) {
  const std::string full = dotted_key(k);
  const FieldRef f = k.field(const_cast<ExperimentConfig&>(cfg));  // read only
  const std::string text = field_text(k, cfg);
  for (const auto& s : k.special)
    if (s.action == ValueAction::Refuse && text == s.value) not_supported(full, text, s.reason, s.hint);
  if (!k.choices.empty()) {
    const auto offered = offered_choices(k);
    auto check = [&](const std::string& v) {
      if (std::find(offered.begin(), offered.end(), v) == offered.end() &&
          std::none_of(k.special.begin(), k.special.end(), [&](const SpecialValue& s) { return s.value == v; }))
        fail(full, ": invalid value \"", v, "\"; allowed values: ", join_views(offered));
    };
    if (auto* list = std::get_if<StringList*>(&f)) {
      for (const auto& item : **list) check(item);
    } else {
      check(text);
    }
  }
  if (k.bounds) {
    if (auto* d = std::get_if<double*>(&f)) check_bounds(k, **d);
    if (auto* i = std::get_if<int64_t*>(&f)) check_bounds(k, static_cast<double>(**i));
  }
}

void check_section(const ExperimentConfig& cfg, std::string_view section) {
  for (const auto& k : config_keys())
    if (k.section == section && k.status == KeyStatus::Implemented) check_key(k, cfg);
}

// ---- loading ------------------------------------------------------------------------------------------------

// An H2O key without effect here: noted in ignored_keys, warned about or refused when its value is not the inert one.
void set_inert_key(ExperimentConfig& cfg, const KeySpec& k, const std::string& value) {
  const std::string full = dotted_key(k);
  cfg.ignored_keys.push_back(full);
  if (k.inert.empty() || value == k.inert) return;
  if (k.status == KeyStatus::Refused)
    fail(full, ": \"", value, "\" is not supported yet (", k.reason, "); only ", k.inert, " is accepted");
  cfg.warnings.push_back(full + ": \"" + value + "\" is ignored: " + std::string(k.reason));
}

void set_key(ExperimentConfig& cfg, const std::string& section, const std::string& key, const YAML::Node* node,
             const std::string* text) {
  const std::string full = section.empty() ? key : section + "." + key;
  if (const KeySpec* k = find_key(section, key)) {
    if (k->status == KeyStatus::Implemented) parse_field(*k, k->field(cfg), node, text);
    else set_inert_key(cfg, *k, node ? node_text(*node) : *text);
    return;
  }
  if (!section.empty() && !is_section(section)) {
    StringList sections;
    for (auto s : config_sections())
      if (!s.empty()) sections.emplace_back(s);
    fail("unknown section \"", section, "\" (key ", full, "); sections: ", join(sections));
  }
  fail("unknown key ", full, suggestion(full), "\n  hint: `llmstudio config check` on an empty file prints every key");
}

// Values the table replaces by the key's default (H2O's GPT metric), with a warning.
void apply_replacements(ExperimentConfig& cfg) {
  for (const auto& k : config_keys()) {
    for (const auto& s : k.special) {
      if (s.action != ValueAction::Replace || field_text(k, cfg) != s.value) continue;
      const std::string def = default_text(k);
      cfg.warnings.push_back(dotted_key(k) + ": \"" + std::string(s.value) + "\" is not available (" +
                             std::string(s.reason) + "); using " + def);
      parse_field(k, k.field(cfg), nullptr, &def);
    }
  }
}

// Warnings about valid but questionable settings (after validation).
void add_semantic_warnings(ExperimentConfig& cfg) {
  for (const auto& k : config_keys()) {  // values kept but without effect here (logger: Neptune)
    for (const auto& s : k.special)
      if (s.action == ValueAction::Ignore && field_text(k, cfg) == s.value)
        cfg.warnings.push_back(dotted_key(k) + ": \"" + std::string(s.value) + "\" is ignored: " + std::string(s.reason));
  }
  if (cfg.prediction.temperature > 0 && !cfg.prediction.do_sample)  // H2O's own config check
    cfg.warnings.push_back("prediction.temperature > 0 has no effect without prediction.do_sample: true");
  if (cfg.prediction.temperature == 0 && cfg.prediction.do_sample)
    cfg.warnings.push_back("prediction.do_sample: true needs prediction.temperature > 0");
}

void load_tree(ExperimentConfig& cfg, const YAML::Node& root, const std::string& source) {
  if (!root || root.IsNull()) return;  // an empty file: all defaults
  LLMS_CHECK(root.IsMap(), source, ": expected a YAML mapping of keys (H2O cfg.yaml layout) at the top level");
  // problem_type first: other problem types have other keys, so refuse them before complaining about keys
  if (auto pt = root["problem_type"]; pt && pt.IsScalar()) {
    for (const auto& s : find_key("", "problem_type")->special)
      if (s.action == ValueAction::Refuse && pt.Scalar() == s.value) not_supported("problem_type", pt.Scalar(), s.reason, s.hint);
  }
  for (const auto& item : root) {
    const std::string name = item.first.as<std::string>();
    const YAML::Node& value = item.second;
    if (is_section(name)) {
      if (value.IsNull()) continue;
      LLMS_CHECK(value.IsMap(), source, ": section ", name, " must be a mapping of keys");
      for (const auto& kv : value) set_key(cfg, name, kv.first.as<std::string>(), &kv.second, nullptr);
    } else {
      set_key(cfg, "", name, &value, nullptr);
    }
  }
}

}  // namespace

// ---- validation ---------------------------------------------------------------------------------------------
// The choices, ranges and refused values come from the key table (check_section); here only the rules across keys.

void DatasetConfig::validate() const {
  if (validation_strategy == ValidationStrategy::Custom && (validation_dataframe.empty() || validation_dataframe == "None"))
    fail("dataset.validation_dataframe: must name a file when dataset.validation_strategy is custom",
         "\n  hint: --set dataset.validation_dataframe=path/to/val.csv or dataset.validation_strategy=automatic");
  LLMS_CHECK(!train_dataframe.empty() && train_dataframe != "None",
             "dataset.train_dataframe: must name the training data file (.csv, .jsonl, .parquet)");
  LLMS_CHECK(!prompt_column.empty(), "dataset.prompt_column: name at least one column");
  for (const auto& c : prompt_column)
    LLMS_CHECK(c != "None", "dataset.prompt_column: \"None\" is not a column; name the prompt column(s)");
  LLMS_CHECK(!answer_column.empty() && answer_column != "None", "dataset.answer_column: must name a column");
  if (!data::is_none_column(parent_id_column)) {
    LLMS_CHECK(!data::is_none_column(id_column), "dataset.id_column: must name a column when dataset.parent_id_column (\"",
               parent_id_column, "\") is set");
    LLMS_CHECK(id_column != parent_id_column, "dataset.id_column and dataset.parent_id_column are both \"", id_column,
               "\"; they must be different columns");
  }
  if (only_last_answer && !mask_prompt_labels)
    fail("dataset.only_last_answer: true needs dataset.mask_prompt_labels: true (as in H2O)");
}

void TokenizerConfig::validate() const {}

void ArchitectureConfig::validate() const {}

void TrainingConfig::validate() const {}

std::vector<std::string> TrainingConfig::lora_target_module_list() const {
  StringList out;
  parse_text("training.lora_target_modules", lora_target_modules, out);
  return out;
}

void AugmentationConfig::validate() const {}

void PredictionConfig::validate() const {
  if (min_length_inference > max_length_inference)
    fail("prediction.min_length_inference (", min_length_inference, ") exceeds prediction.max_length_inference (",
         max_length_inference, ")");
}

void EnvironmentConfig::validate() const {}

void LoggingConfig::validate() const {}

void ExperimentConfig::validate() const {
  check_section(*this, "");
  LLMS_CHECK(!experiment_name.empty(), "experiment_name: must not be empty");
  LLMS_CHECK(!output_directory.empty(), "output_directory: must not be empty");
  LLMS_CHECK(!llm_backbone.empty(), "llm_backbone: not set; it must name a local model folder (config.json, "
                                    "*.safetensors, tokenizer.json)\n  hint: --set llm_backbone=/path/to/model");
  check_section(*this, "dataset");
  dataset.validate();
  check_section(*this, "tokenizer");
  tokenizer.validate();
  check_section(*this, "architecture");
  architecture.validate();
  check_section(*this, "training");
  training.validate();
  check_section(*this, "augmentation");
  augmentation.validate();
  check_section(*this, "prediction");
  prediction.validate();
  check_section(*this, "environment");
  environment.validate();
  check_section(*this, "logging");
  logging.validate();
  if (training.packing && training.loss_function != LossFunction::TokenAveraged)
    fail("training.packing: true needs training.loss_function: TokenAveragedCrossEntropy (found ",
         to_string(training.loss_function), "; a packed row holds several samples)\n  hint: --set training.packing=false");
}

// ---- public API ---------------------------------------------------------------------------------------------

void apply_override(ExperimentConfig& cfg, const std::string& assignment) {
  auto eq = assignment.find('=');
  LLMS_CHECK(eq != std::string::npos && eq > 0, "--set ", assignment, ": expected section.key=value (e.g. ",
             "--set training.learning_rate=1e-4)");
  std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  auto dot = path.find('.');
  std::string section = dot == std::string::npos ? "" : path.substr(0, dot);
  std::string key = dot == std::string::npos ? path : path.substr(dot + 1);
  LLMS_CHECK(key.find('.') == std::string::npos, "--set ", assignment, ": unknown key ", path, suggestion(path));
  set_key(cfg, section, key, nullptr, &value);
  apply_replacements(cfg);
}

ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& source,
                                         const std::vector<std::string>& overrides) {
  ExperimentConfig cfg;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": not valid YAML: ", e.msg);
  }
  try {
    load_tree(cfg, root, source);
    apply_replacements(cfg);
    for (const auto& o : overrides) apply_override(cfg, o);
    cfg.validate();
    add_semantic_warnings(cfg);
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  } catch (const YAML::Exception& e) {
    fail(source, ": ", e.what());
  }
  return cfg;
}

ExperimentConfig load_experiment_config(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  return parse_experiment_config(io::read_file(path), path.string(), overrides);
}

std::string to_yaml(const ExperimentConfig& cfg) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  std::string open_section;
  for (const auto& k : config_keys()) {
    if (k.status != KeyStatus::Implemented) continue;
    if (open_section != k.section) {
      if (!open_section.empty()) e << YAML::EndMap;
      open_section = std::string(k.section);
      e << YAML::Key << open_section << YAML::Value << YAML::BeginMap;
    }
    e << YAML::Key << std::string(k.key);
    emit_field(e, k, cfg);
  }
  if (!open_section.empty()) e << YAML::EndMap;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

std::filesystem::path save_resolved_config(const ExperimentConfig& cfg, const std::filesystem::path& experiment_dir) {
  std::filesystem::create_directories(experiment_dir);
  auto path = experiment_dir / "cfg.yaml";
  io::write_file_atomic(path, to_yaml(cfg));
  return path;
}

std::vector<std::string> check_paths(const ExperimentConfig& cfg) {
  namespace fs = std::filesystem;
  std::vector<std::string> problems;
  std::error_code ec;
  if (!fs::is_directory(cfg.llm_backbone, ec))
    problems.push_back("llm_backbone: \"" + cfg.llm_backbone + "\" is not a folder (expected a local model folder)");
  else if (!fs::exists(fs::path(cfg.llm_backbone) / "config.json", ec))
    problems.push_back("llm_backbone: \"" + cfg.llm_backbone + "\" has no config.json");
  if (!fs::is_regular_file(cfg.dataset.train_dataframe, ec))
    problems.push_back("dataset.train_dataframe: file \"" + cfg.dataset.train_dataframe + "\" not found");
  if (cfg.dataset.validation_strategy == ValidationStrategy::Custom && !fs::is_regular_file(cfg.dataset.validation_dataframe, ec))
    problems.push_back("dataset.validation_dataframe: file \"" + cfg.dataset.validation_dataframe + "\" not found");
  return problems;
}

tokenizer::PromptFormatConfig prompt_format_config(const ExperimentConfig& cfg) {
  tokenizer::PromptFormatConfig p;
  const auto& d = cfg.dataset;
  // H2O drops the system marker when there is no system column; an empty system text is never formatted anyway.
  p.text_system_start = d.text_system_start;
  p.text_prompt_start = d.text_prompt_start;
  p.text_answer_separator = d.text_answer_separator;
  p.add_eos_token_to_system = d.add_eos_token_to_system;
  p.add_eos_token_to_prompt = d.add_eos_token_to_prompt;
  p.add_eos_token_to_answer = d.add_eos_token_to_answer;
  p.limit_chained_samples = d.limit_chained_samples;
  p.mask_prompt_labels = d.mask_prompt_labels;
  p.only_last_answer = d.only_last_answer;
  p.max_length = cfg.tokenizer.max_length;
  p.use_chat_template = d.use_chat_template;
  return p;
}

std::vector<std::string> stop_words(const ExperimentConfig& cfg) {
  std::vector<std::string> out;
  const std::string& list = cfg.prediction.stop_tokens;
  for (std::size_t start = 0; start <= list.size();) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  if (cfg.dataset.use_chat_template) return out;
  for (const std::string* marker : {&cfg.dataset.text_system_start, &cfg.dataset.text_prompt_start,
                                    &cfg.dataset.text_answer_separator}) {
    const std::string w = tokenizer::decode_marker(*marker);
    const std::string_view stripped = tokenizer::unicode::python_strip(w);  // Python's str.strip(), as H2O
    if (!stripped.empty()) out.emplace_back(stripped);
  }
  return out;
}

data::DatasetSpec dataset_spec(const ExperimentConfig& cfg) {
  const auto& d = cfg.dataset;
  data::DatasetSpec s;
  s.train_dataframe = d.train_dataframe;
  s.validation_strategy = std::string(to_string(d.validation_strategy));
  s.validation_dataframe = d.validation_dataframe;
  s.validation_size = d.validation_size;
  s.data_sample = d.data_sample;
  auto has = [&](const char* v) {
    return std::find(d.data_sample_choice.begin(), d.data_sample_choice.end(), v) != d.data_sample_choice.end();
  };
  s.sample_train = has("Train");
  s.sample_validation = has("Validation");
  s.train_validation_data = cfg.training.train_validation_data;
  s.columns.system_column = d.system_column;
  s.columns.prompt_columns = d.prompt_column;
  s.columns.prompt_column_separator = d.prompt_column_separator;
  s.columns.answer_column = d.answer_column;
  s.columns.parent_id_column = d.parent_id_column;
  s.columns.id_column = d.id_column;
  return s;
}

}  // namespace llmstudio::experiment
