// Experiment config: the key table, YAML loading and dumping, overrides, validation (see experiment_config.h).
#include "llmstudio/experiment/experiment_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>

#include "llmstudio/core/error.h"
#include "llmstudio/data/table.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/train/bleu.h"

namespace llmstudio::experiment {
namespace {

using StringList = std::vector<std::string>;

// ---- the key table ----------------------------------------------------------------------------------------

// Calls f(section, key, field&) for every key, in the order they are written out ("" = top level).
template <typename Cfg, typename F>
void for_each_field(Cfg& c, F&& f) {
  f("", "experiment_name", c.experiment_name);
  f("", "output_directory", c.output_directory);
  f("", "llm_backbone", c.llm_backbone);
  f("", "problem_type", c.problem_type);
  auto& d = c.dataset;
  f("dataset", "train_dataframe", d.train_dataframe);
  f("dataset", "validation_strategy", d.validation_strategy);
  f("dataset", "validation_dataframe", d.validation_dataframe);
  f("dataset", "validation_size", d.validation_size);
  f("dataset", "data_sample", d.data_sample);
  f("dataset", "data_sample_choice", d.data_sample_choice);
  f("dataset", "system_column", d.system_column);
  f("dataset", "prompt_column", d.prompt_column);
  f("dataset", "prompt_column_separator", d.prompt_column_separator);
  f("dataset", "answer_column", d.answer_column);
  f("dataset", "parent_id_column", d.parent_id_column);
  f("dataset", "id_column", d.id_column);
  f("dataset", "text_system_start", d.text_system_start);
  f("dataset", "text_prompt_start", d.text_prompt_start);
  f("dataset", "text_answer_separator", d.text_answer_separator);
  f("dataset", "add_eos_token_to_system", d.add_eos_token_to_system);
  f("dataset", "add_eos_token_to_prompt", d.add_eos_token_to_prompt);
  f("dataset", "add_eos_token_to_answer", d.add_eos_token_to_answer);
  f("dataset", "limit_chained_samples", d.limit_chained_samples);
  f("dataset", "mask_prompt_labels", d.mask_prompt_labels);
  f("dataset", "only_last_answer", d.only_last_answer);
  f("dataset", "use_chat_template", d.use_chat_template);
  f("tokenizer", "max_length", c.tokenizer.max_length);
  f("tokenizer", "padding_quantile", c.tokenizer.padding_quantile);
  auto& a = c.architecture;
  f("architecture", "backbone_dtype", a.backbone_dtype);
  f("architecture", "gradient_checkpointing", a.gradient_checkpointing);
  f("architecture", "intermediate_dropout", a.intermediate_dropout);
  f("architecture", "pretrained_weights", a.pretrained_weights);
  auto& t = c.training;
  f("training", "loss_function", t.loss_function);
  f("training", "optimizer", t.optimizer);
  f("training", "learning_rate", t.learning_rate);
  f("training", "differential_learning_rate_layers", t.differential_learning_rate_layers);
  f("training", "differential_learning_rate", t.differential_learning_rate);
  f("training", "freeze_layers", t.freeze_layers);
  f("training", "batch_size", t.batch_size);
  f("training", "drop_last_batch", t.drop_last_batch);
  f("training", "epochs", t.epochs);
  f("training", "schedule", t.schedule);
  f("training", "min_learning_rate_ratio", t.min_learning_rate_ratio);
  f("training", "warmup_epochs", t.warmup_epochs);
  f("training", "weight_decay", t.weight_decay);
  f("training", "gradient_clip", t.gradient_clip);
  f("training", "grad_accumulation", t.grad_accumulation);
  f("training", "lora", t.lora);
  f("training", "use_dora", t.use_dora);
  f("training", "lora_r", t.lora_r);
  f("training", "lora_alpha", t.lora_alpha);
  f("training", "lora_dropout", t.lora_dropout);
  f("training", "use_rslora", t.use_rslora);
  f("training", "lora_target_modules", t.lora_target_modules);
  f("training", "lora_unfreeze_layers", t.lora_unfreeze_layers);
  f("training", "save_checkpoint", t.save_checkpoint);
  f("training", "evaluation_epochs", t.evaluation_epochs);
  f("training", "evaluate_before_training", t.evaluate_before_training);
  f("training", "train_validation_data", t.train_validation_data);
  f("training", "packing", t.packing);
  auto& g = c.augmentation;
  f("augmentation", "token_mask_probability", g.token_mask_probability);
  f("augmentation", "skip_parent_probability", g.skip_parent_probability);
  f("augmentation", "random_parent_probability", g.random_parent_probability);
  f("augmentation", "neftune_noise_alpha", g.neftune_noise_alpha);
  auto& p = c.prediction;
  f("prediction", "metric", p.metric);
  f("prediction", "min_length_inference", p.min_length_inference);
  f("prediction", "max_length_inference", p.max_length_inference);
  f("prediction", "max_time", p.max_time);
  f("prediction", "batch_size_inference", p.batch_size_inference);
  f("prediction", "do_sample", p.do_sample);
  f("prediction", "num_beams", p.num_beams);
  f("prediction", "temperature", p.temperature);
  f("prediction", "repetition_penalty", p.repetition_penalty);
  f("prediction", "stop_tokens", p.stop_tokens);
  f("prediction", "top_k", p.top_k);
  f("prediction", "top_p", p.top_p);
  f("environment", "mixed_precision", c.environment.mixed_precision);
  f("environment", "mixed_precision_dtype", c.environment.mixed_precision_dtype);
  f("environment", "seed", c.environment.seed);
  f("logging", "logger", c.logging.logger);
}

const StringList kSections = {"dataset",    "tokenizer",   "architecture", "training",
                              "augmentation", "prediction", "environment",  "logging"};

// H2O keys accepted without effect. Quiet: never warned about (noted in ignored_keys). Warn: a warning when the
// value is not `inert`. Refuse: an error ("not supported yet") when the value is not `inert`.
enum class Ignore { Quiet, Warn, Refuse };
struct IgnoredKey {
  const char* section;
  const char* key;
  Ignore mode;
  const char* inert;  // the value (as YAML text) that changes nothing
  const char* why;
};
const IgnoredKey kIgnored[] = {
    {"dataset", "personalize", Ignore::Warn, "false", "personalization (chatbot name/author) is not supported"},
    {"dataset", "chatbot_name", Ignore::Quiet, "", ""},
    {"dataset", "chatbot_author", Ignore::Quiet, "", ""},
    {"tokenizer", "max_length_prompt", Ignore::Quiet, "", ""},  // older H2O versions; max_length rules
    {"tokenizer", "max_length_answer", Ignore::Quiet, "", ""},
    {"tokenizer", "add_prompt_answer_tokens", Ignore::Warn, "false", "adding marker tokens to the vocabulary is not supported"},
    {"tokenizer", "tokenizer_kwargs", Ignore::Quiet, "", ""},
    {"tokenizer", "use_fast", Ignore::Quiet, "", ""},
    {"tokenizer", "add_prefix_space", Ignore::Warn, "false", "the tokenizer's own tokenizer.json settings are used"},
    {"architecture", "pretrained", Ignore::Refuse, "true", "training from random weights"},
    {"architecture", "force_embedding_gradients", Ignore::Warn, "false", "embeddings are trained only without LoRA"},
    {"training", "attention_implementation", Ignore::Warn, "auto", "llmstudio always uses its SDPA attention"},
    {"training", "use_flash_attention_2", Ignore::Warn, "false", "llmstudio always uses its SDPA attention"},
    {"training", "save_best_checkpoint", Ignore::Warn, "false", "older H2O key; use training.save_checkpoint: best"},
    {"training", "use_rlhf", Ignore::Refuse, "false", "RLHF training"},
    {"prediction", "metric_gpt_model", Ignore::Quiet, "", ""},
    {"prediction", "metric_gpt_template", Ignore::Quiet, "", ""},
    {"prediction", "num_history", Ignore::Quiet, "", ""},
    {"environment", "gpus", Ignore::Quiet, "", ""},  // device choice: --device / LLMSTUDIO_DEVICE
    {"environment", "compile_model", Ignore::Warn, "false", "torch.compile does not apply to llmstudio"},
    {"environment", "use_deepspeed", Ignore::Warn, "false", "DeepSpeed is not supported (single-device training)"},
    {"environment", "deepspeed_method", Ignore::Quiet, "", ""},
    {"environment", "deepspeed_allgather_bucket_size", Ignore::Quiet, "", ""},
    {"environment", "deepspeed_reduce_bucket_size", Ignore::Quiet, "", ""},
    {"environment", "deepspeed_stage3_prefetch_bucket_size", Ignore::Quiet, "", ""},
    {"environment", "deepspeed_stage3_param_persistence_threshold", Ignore::Quiet, "", ""},
    {"environment", "use_fsdp", Ignore::Warn, "false", "FSDP is not supported (single-device training)"},
    {"environment", "find_unused_parameters", Ignore::Quiet, "", ""},
    {"environment", "trust_remote_code", Ignore::Quiet, "", ""},  // llmstudio never runs model code from the folder
    {"environment", "huggingface_branch", Ignore::Quiet, "", ""},
    {"environment", "number_of_workers", Ignore::Quiet, "", ""},
    {"logging", "neptune_project", Ignore::Quiet, "", ""},
    {"logging", "wandb_project", Ignore::Quiet, "", ""},
    {"logging", "wandb_entity", Ignore::Quiet, "", ""},
    {"logging", "number_of_texts", Ignore::Quiet, "", ""},
    {"logging", "log_step_size", Ignore::Quiet, "", ""},
    {"logging", "log_all_ranks", Ignore::Quiet, "", ""},
};
// Older RLHF keys (only meaningful with use_rlhf, which is refused).
const StringList kRlhfKeys = {"reward_model", "adaptive_kl_control", "full_kl_penalty", "initial_kl_coefficient",
                              "kl_target", "kl_horizon", "advantages_gamma", "advantages_lambda",
                              "ppo_clip_policy", "ppo_clip_value", "scaling_factor_value_loss", "ppo_epochs",
                              "ppo_batch_size", "ppo_generate_temperature", "offload_reward_model", "rollout_steps"};

const StringList kOtherProblemTypes = {"text_causal_classification_modeling", "text_causal_regression_modeling",
                                       "text_sequence_to_sequence_modeling", "text_dpo_modeling",
                                       "text_rlhf_language_modeling"};

std::string join(const StringList& v, const char* sep = ", ") {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string dotted(const char* section, const char* key) {
  return *section ? std::string(section) + "." + key : std::string(key);
}

StringList all_keys() {
  StringList keys;
  ExperimentConfig c;
  for_each_field(c, [&](const char* s, const char* k, auto&) { keys.push_back(dotted(s, k)); });
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

// ---- output -------------------------------------------------------------------------------------------------

// Floats as Python's yaml.dump writes them (1.0e-05: PyYAML reads "1e-05" as a string).
std::string yaml_float(double v) {
  std::string s = data::format_python_float(v);
  auto e = s.find('e');
  if (e != std::string::npos && s.find('.') == std::string::npos) s.insert(e, ".0");
  return s;
}

void emit_value(YAML::Emitter& e, const std::string& v) { e << YAML::Value << v; }
void emit_value(YAML::Emitter& e, bool v) { e << YAML::Value << (v ? "true" : "false"); }
void emit_value(YAML::Emitter& e, int64_t v) { e << YAML::Value << std::to_string(v); }
void emit_value(YAML::Emitter& e, double v) { e << YAML::Value << yaml_float(v); }
void emit_value(YAML::Emitter& e, const StringList& v) {
  e << YAML::Value << YAML::BeginSeq;
  for (const auto& s : v) e << s;
  e << YAML::EndSeq;
}

// ---- validation helpers -------------------------------------------------------------------------------------

void check_one_of(const char* key, const std::string& v, const StringList& allowed) {
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
    fail(key, ": invalid value \"", v, "\"; allowed values: ", join(allowed));
}
void check_range(const char* key, double v, double lo, double hi, bool lo_open = false, bool hi_open = false) {
  bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (!ok)
    fail(key, ": invalid value ", data::format_python_float(v), "; allowed range ", lo_open ? "(" : "[",
         data::format_python_float(lo), ", ", std::isinf(hi) ? "inf" : data::format_python_float(hi),
         hi_open || std::isinf(hi) ? ")" : "]");
}
void check_min(const char* key, int64_t v, int64_t lo) {
  if (v < lo) fail(key, ": invalid value ", v, "; must be at least ", lo);
}
// Integers with an upper bound too: a value past it (lora_r = 2^62, batch_size = 1e12) would only exhaust memory
// or time once training starts, so it is refused here with the allowed range.
void check_between(const char* key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) fail(key, ": invalid value ", v, "; allowed range [", lo, ", ", hi, "]");
}
[[noreturn]] void not_supported(const char* key, const std::string& v, const std::string& what, const std::string& hint) {
  fail(key, ": \"", v, "\" is not supported yet (", what, ")\n  hint: ", hint);
}
constexpr double kInf = INFINITY;
constexpr int64_t kMaxBatch = 65536;          // samples per batch (training and inference)
constexpr int64_t kMaxTokens = int64_t{1} << 20;  // tokens per sample or generation

// ---- loading ------------------------------------------------------------------------------------------------

void set_key(ExperimentConfig& cfg, const std::string& section, const std::string& key, const YAML::Node* node,
             const std::string* text) {
  const std::string full = section.empty() ? key : section + "." + key;
  bool found = false;
  for_each_field(cfg, [&](const char* s, const char* k, auto& field) {
    if (found || section != s || key != k) return;
    found = true;
    if (node) parse_node(full, *node, field);
    else if constexpr (std::is_same_v<std::decay_t<decltype(field)>, StringList>) {
      if (!text->empty() && text->front() == '[') parse_node(full, YAML::Load(*text), field);
      else parse_text(full, *text, field);
    } else {
      parse_text(full, *text, field);
    }
  });
  if (found) return;
  const std::string value = node ? node_text(*node) : *text;
  for (const auto& ig : kIgnored) {
    if (section != ig.section || key != ig.key) continue;
    cfg.ignored_keys.push_back(full);
    if (ig.mode == Ignore::Quiet || value == ig.inert) return;
    if (ig.mode == Ignore::Refuse)
      fail(full, ": \"", value, "\" is not supported yet (", ig.why, "); only ", ig.inert, " is accepted");
    cfg.warnings.push_back(full + ": \"" + value + "\" is ignored: " + ig.why);
    return;
  }
  if (section == "training" && std::find(kRlhfKeys.begin(), kRlhfKeys.end(), key) != kRlhfKeys.end()) {
    cfg.ignored_keys.push_back(full);
    return;
  }
  if (std::find(kSections.begin(), kSections.end(), section) == kSections.end() && !section.empty())
    fail("unknown section \"", section, "\" (key ", full, "); sections: ", join(kSections));
  fail("unknown key ", full, suggestion(full), "\n  hint: `llmstudio config check` on an empty file prints every key");
}

void apply_metric_fallback(ExperimentConfig& cfg) {
  if (cfg.prediction.metric == "GPT") {  // H2O's default, an OpenAI API judge
    cfg.warnings.push_back(
        "prediction.metric: \"GPT\" (an external OpenAI judge) is not available in llmstudio; using Perplexity");
    cfg.prediction.metric = "Perplexity";
  }
}

// Warnings about valid but questionable settings (after validation).
void add_semantic_warnings(ExperimentConfig& cfg) {
  if (cfg.logging.logger != "None")
    cfg.warnings.push_back("logging.logger: \"" + cfg.logging.logger +
                           "\" is ignored: llmstudio writes its logs to the experiment folder only");
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
    const std::string v = pt.Scalar();
    if (std::find(kOtherProblemTypes.begin(), kOtherProblemTypes.end(), v) != kOtherProblemTypes.end())
      not_supported("problem_type", v, "only text_causal_language_modeling is implemented",
                    "other H2O problem types are separate work; use problem_type: text_causal_language_modeling");
  }
  for (const auto& item : root) {
    const std::string name = item.first.as<std::string>();
    const YAML::Node& value = item.second;
    if (std::find(kSections.begin(), kSections.end(), name) != kSections.end()) {
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

void DatasetConfig::validate() const {
  check_one_of("dataset.validation_strategy", validation_strategy, {"automatic", "custom"});
  if (validation_strategy == "custom" && (validation_dataframe.empty() || validation_dataframe == "None"))
    fail("dataset.validation_dataframe: must name a file when dataset.validation_strategy is custom",
         "\n  hint: --set dataset.validation_dataframe=path/to/val.csv or dataset.validation_strategy=automatic");
  check_range("dataset.validation_size", validation_size, 0, 1, true, true);
  check_range("dataset.data_sample", data_sample, 0, 1, true, false);
  for (const auto& c : data_sample_choice) check_one_of("dataset.data_sample_choice", c, {"Train", "Validation"});
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

void TokenizerConfig::validate() const {
  check_between("tokenizer.max_length", max_length, 1, kMaxTokens);
  check_range("tokenizer.padding_quantile", padding_quantile, 0, 1);
}

void ArchitectureConfig::validate() const {
  if (backbone_dtype == "int8" || backbone_dtype == "int4")
    not_supported("architecture.backbone_dtype", backbone_dtype, "native quantization is separate work",
                  "--set architecture.backbone_dtype=bfloat16 (or float16, float32, auto)");
  check_one_of("architecture.backbone_dtype", backbone_dtype, {"auto", "float32", "bfloat16", "float16"});
  check_range("architecture.intermediate_dropout", intermediate_dropout, 0, 1, false, true);
}

void TrainingConfig::validate() const {
  check_one_of("training.loss_function", loss_function, {"TokenAveragedCrossEntropy", "SampleAveragedCrossEntropy"});
  if (optimizer == "AdamW8bit")
    not_supported("training.optimizer", optimizer, "8-bit optimizers need bitsandbytes", "--set training.optimizer=AdamW");
  check_one_of("training.optimizer", optimizer, {"AdamW", "Adam", "SGD", "RMSprop", "Adadelta"});
  check_range("training.learning_rate", learning_rate, 0, kInf, true);
  check_range("training.differential_learning_rate", differential_learning_rate, 0, kInf, true);
  check_between("training.batch_size", batch_size, 1, kMaxBatch);
  check_between("training.epochs", epochs, 0, 10000);
  check_one_of("training.schedule", schedule, {"Cosine", "Linear", "Constant"});
  check_range("training.min_learning_rate_ratio", min_learning_rate_ratio, 0, 1);
  check_range("training.warmup_epochs", warmup_epochs, 0, 10000);
  check_range("training.weight_decay", weight_decay, 0, kInf);
  check_range("training.gradient_clip", gradient_clip, 0, kInf);
  check_between("training.grad_accumulation", grad_accumulation, 1, 65536);
  check_between("training.lora_r", lora_r, 1, 4096);
  check_between("training.lora_alpha", lora_alpha, 1, 1 << 20);
  check_range("training.lora_dropout", lora_dropout, 0, 1, false, true);
  check_one_of("training.save_checkpoint", save_checkpoint, {"last", "best", "each_evaluation_epoch", "disable"});
  check_range("training.evaluation_epochs", evaluation_epochs, 0, 10000, true);
}

std::vector<std::string> TrainingConfig::lora_target_module_list() const {
  StringList out;
  parse_text("training.lora_target_modules", lora_target_modules, out);
  return out;
}

void AugmentationConfig::validate() const {
  check_range("augmentation.token_mask_probability", token_mask_probability, 0, 1);
  check_range("augmentation.skip_parent_probability", skip_parent_probability, 0, 1);
  check_range("augmentation.random_parent_probability", random_parent_probability, 0, 1);
  check_range("augmentation.neftune_noise_alpha", neftune_noise_alpha, 0, kInf);
}

void PredictionConfig::validate() const {
  check_one_of("prediction.metric", metric, {"Perplexity", "BLEU"});
  check_between("prediction.min_length_inference", min_length_inference, 0, kMaxTokens);
  check_between("prediction.max_length_inference", max_length_inference, 1, kMaxTokens);
  if (min_length_inference > max_length_inference)
    fail("prediction.min_length_inference (", min_length_inference, ") exceeds prediction.max_length_inference (",
         max_length_inference, ")");
  check_range("prediction.max_time", max_time, 0, 86400);
  check_between("prediction.batch_size_inference", batch_size_inference, 0, kMaxBatch);
  check_between("prediction.num_beams", num_beams, 1, 256);
  check_range("prediction.temperature", temperature, 0, kInf);
  check_range("prediction.repetition_penalty", repetition_penalty, 0, kInf, true);
  check_between("prediction.top_k", top_k, 0, 1 << 24);
  check_range("prediction.top_p", top_p, 0, 1, true);
}

void EnvironmentConfig::validate() const {
  check_one_of("environment.mixed_precision_dtype", mixed_precision_dtype, {"bfloat16", "float16"});
  check_min("environment.seed", seed, -1);
}

void LoggingConfig::validate() const { check_one_of("logging.logger", logger, {"None", "Neptune", "W&B"}); }

void ExperimentConfig::validate() const {
  if (std::find(kOtherProblemTypes.begin(), kOtherProblemTypes.end(), problem_type) != kOtherProblemTypes.end())
    not_supported("problem_type", problem_type, "only text_causal_language_modeling is implemented",
                  "use problem_type: text_causal_language_modeling");
  check_one_of("problem_type", problem_type, {"text_causal_language_modeling"});
  LLMS_CHECK(!experiment_name.empty(), "experiment_name: must not be empty");
  LLMS_CHECK(!output_directory.empty(), "output_directory: must not be empty");
  LLMS_CHECK(!llm_backbone.empty(), "llm_backbone: not set; it must name a local model folder (config.json, "
                                    "*.safetensors, tokenizer.json)\n  hint: --set llm_backbone=/path/to/model");
  dataset.validate();
  tokenizer.validate();
  architecture.validate();
  training.validate();
  augmentation.validate();
  prediction.validate();
  environment.validate();
  logging.validate();
  if (training.packing && training.loss_function != "TokenAveragedCrossEntropy")
    fail("training.packing: true needs training.loss_function: TokenAveragedCrossEntropy (found ",
         training.loss_function, "; a packed row holds several samples)\n  hint: --set training.packing=false");
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
  if (path == "prediction.metric") apply_metric_fallback(cfg);
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
    apply_metric_fallback(cfg);
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
  for_each_field(cfg, [&](const char* s, const char* k, const auto& field) {
    if (open_section != s) {
      if (!open_section.empty()) e << YAML::EndMap;
      open_section = s;
      e << YAML::Key << s << YAML::Value << YAML::BeginMap;
    }
    e << YAML::Key << k;
    emit_value(e, field);
  });
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
  if (cfg.dataset.validation_strategy == "custom" && !fs::is_regular_file(cfg.dataset.validation_dataframe, ec))
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
    const std::string_view stripped = train::strip_whitespace(w);  // Python's str.strip(), as H2O
    if (!stripped.empty()) out.emplace_back(stripped);
  }
  return out;
}

data::DatasetSpec dataset_spec(const ExperimentConfig& cfg) {
  const auto& d = cfg.dataset;
  data::DatasetSpec s;
  s.train_dataframe = d.train_dataframe;
  s.validation_strategy = d.validation_strategy;
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
