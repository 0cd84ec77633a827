// The experiment configuration of a fine-tuning run, in H2O LLM Studio's cfg.yaml layout so existing configs
// carry over: top-level experiment_name / output_directory / llm_backbone / problem_type and the sections
// dataset, tokenizer, architecture, training, augmentation, prediction, environment, logging with H2O's key
// names. Owns loading from YAML, `--set section.key=value` overrides, validation, the resolved-config dump
// (H2O layout, loadable again) and the mapping to the prompt formatter and the dataset loader.
//
// Defaults are H2O's for text_causal_language_modeling (llm_studio/python_configs/
// text_causal_language_modeling_config.py) except where marked "differs from H2O" below.
// Every key, its type, allowed values or range, help and status live in one table (config_schema.h), which
// loading, `--set`, validate(), the warnings and to_yaml() follow.
// Strictness: unknown keys and invalid values are errors naming the key, the value and the allowed values;
// H2O keys without meaning here (Neptune/W&B, DeepSpeed, GPU lists, ...) are accepted and ignored, with a
// warning when their value would have changed H2O's behaviour; int8/int4 backbones, RLHF and problem
// types other than causal LM are refused as "not supported yet".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "llmstudio/data/dataset_split.h"
#include "llmstudio/experiment/config_enums.h"
#include "llmstudio/tokenizer/prompt_format.h"

namespace llmstudio::experiment {

struct DatasetConfig {
  std::string train_dataframe = "/path/to/train.csv";
  ValidationStrategy validation_strategy = ValidationStrategy::Automatic;
  std::string validation_dataframe = "None";       // H2O's default is ""; exported configs say "None"
  double validation_size = 0.01;
  double data_sample = 1.0;
  std::vector<std::string> data_sample_choice = {"Train", "Validation"};
  std::string system_column = "system";  // "None" = no system prompts
  std::vector<std::string> prompt_column = {"instruction", "input"};
  std::string prompt_column_separator = "\\n\\n";  // escapes decoded like Python's unicode_escape
  std::string answer_column = "output";
  std::string parent_id_column = "parent_id";  // "None" = no conversation chaining
  std::string id_column = "id";
  std::string text_system_start = "<|system|>";
  std::string text_prompt_start = "<|prompt|>";
  std::string text_answer_separator = "<|answer|>";
  bool add_eos_token_to_system = true;
  bool add_eos_token_to_prompt = true;
  bool add_eos_token_to_answer = true;
  bool limit_chained_samples = false;
  bool mask_prompt_labels = true;
  bool only_last_answer = false;
  bool use_chat_template = false;  // llmstudio addition: lay samples out with the model's chat template

  void validate() const;
};

struct TokenizerConfig {
  int64_t max_length = 512;
  double padding_quantile = 1.0;
  void validate() const;
};

struct ArchitectureConfig {
  // differs from H2O: H2O defaults to int4 (bitsandbytes); we default to "auto" = bfloat16 where the device
  // supports it, else float32 (platform::choose_device). int8/int4 are refused until native quantization exists.
  BackboneDtype backbone_dtype = BackboneDtype::Auto;
  bool gradient_checkpointing = true;
  double intermediate_dropout = 0.0;
  std::string pretrained_weights = "";
  void validate() const;
};

struct TrainingConfig {
  LossFunction loss_function = LossFunction::TokenAveraged;
  OptimizerKind optimizer = OptimizerKind::AdamW;
  double learning_rate = 0.0001;
  std::vector<std::string> differential_learning_rate_layers = {};
  double differential_learning_rate = 0.00001;
  std::vector<std::string> freeze_layers = {};
  int64_t batch_size = 2;
  bool drop_last_batch = true;
  int64_t epochs = 1;
  ScheduleKind schedule = ScheduleKind::Cosine;
  double min_learning_rate_ratio = 0.0;
  double warmup_epochs = 0.0;
  double weight_decay = 0.0;
  double gradient_clip = 0.0;
  int64_t grad_accumulation = 1;
  bool lora = true;
  bool use_dora = false;
  int64_t lora_r = 4;
  int64_t lora_alpha = 16;
  double lora_dropout = 0.05;
  bool use_rslora = false;
  std::string lora_target_modules = "";  // comma-separated; "" = all linear layers of the blocks (as H2O)
  std::vector<std::string> lora_unfreeze_layers = {};
  SaveCheckpoint save_checkpoint = SaveCheckpoint::Last;
  double evaluation_epochs = 1.0;
  bool evaluate_before_training = false;
  bool train_validation_data = false;
  bool packing = false;  // llmstudio addition: pack samples into rows of tokenizer.max_length (train/packing)

  std::vector<std::string> lora_target_module_list() const;  // lora_target_modules split on commas, trimmed
  void validate() const;
};

struct AugmentationConfig {
  double token_mask_probability = 0.0;
  double skip_parent_probability = 0.0;
  double random_parent_probability = 0.0;
  double neftune_noise_alpha = 0.0;
  void validate() const;
};

struct PredictionConfig {
  // differs from H2O: H2O defaults to "GPT" (an OpenAI API judge); we have no external judge, so Perplexity.
  MetricKind metric = MetricKind::Perplexity;
  int64_t min_length_inference = 2;
  int64_t max_length_inference = 256;
  double max_time = 0.0;
  int64_t batch_size_inference = 0;  // 0 = training batch size
  bool do_sample = false;
  int64_t num_beams = 1;
  double temperature = 0.0;
  double repetition_penalty = 1.0;
  std::string stop_tokens = "";
  int64_t top_k = 0;
  double top_p = 1.0;
  void validate() const;
};

struct EnvironmentConfig {
  bool mixed_precision = true;
  MixedPrecisionDtype mixed_precision_dtype = MixedPrecisionDtype::BFloat16;
  int64_t seed = -1;  // -1 = a random seed, chosen and recorded at the start of training
  void validate() const;
};

struct LoggingConfig {
  LoggerKind logger = LoggerKind::None;  // only local logs here; Neptune / W&B are ignored with a warning
  void validate() const;
};

struct ExperimentConfig {
  std::string experiment_name = "experiment";  // H2O generates a random name
  std::string output_directory = "output/text_causal_language_modeling_config";
  std::string llm_backbone = "";  // differs from H2O: a local model folder, no Hub download
  std::string problem_type = "text_causal_language_modeling";
  DatasetConfig dataset;
  TokenizerConfig tokenizer;
  ArchitectureConfig architecture;
  TrainingConfig training;
  AugmentationConfig augmentation;
  PredictionConfig prediction;
  EnvironmentConfig environment;
  LoggingConfig logging;

  // Filled by loading / overrides, not part of the YAML: warnings to show the user, and the H2O keys that were
  // accepted but have no effect here ("section.key").
  std::vector<std::string> warnings;
  std::vector<std::string> ignored_keys;

  // Validates every section and the cross-section rules; throws llmstudio::Error naming the key.
  void validate() const;
};

// Loads a cfg.yaml, applies `overrides` ("section.key=value", in order) and validates. Errors name the file.
ExperimentConfig load_experiment_config(const std::filesystem::path& path,
                                        const std::vector<std::string>& overrides = {});
// The same from YAML text; `source` names it in errors.
ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& source,
                                         const std::vector<std::string>& overrides = {});

// Applies one "section.key=value" (or "key=value" for top-level keys) override, typed by the key's type.
// Lists take "a,b" or YAML "[a, b]". Throws for unknown keys (suggesting the closest) and malformed values; does
// not validate (call validate() after the last override).
void apply_override(ExperimentConfig& cfg, const std::string& assignment);

// The resolved configuration as YAML in H2O's layout (loadable by load_experiment_config and by H2O).
std::string to_yaml(const ExperimentConfig& cfg);

// Writes to_yaml(cfg) atomically to `<experiment_dir>/cfg.yaml` (creating the folder); returns the file path.
std::filesystem::path save_resolved_config(const ExperimentConfig& cfg, const std::filesystem::path& experiment_dir);

// Problems with the paths the config names (missing llm_backbone folder, missing dataset files): empty if all
// exist. Relative paths are taken from the working folder. Not part of validate(), which never touches files.
std::vector<std::string> check_paths(const ExperimentConfig& cfg);

// The prompt-formatting settings for tokenizer::PromptFormatter.
tokenizer::PromptFormatConfig prompt_format_config(const ExperimentConfig& cfg);

// H2O's stop words (its set_stop_token_ids): prediction.stop_tokens split on ',' (empty parts dropped), then, for
// H2O's marker layout (not with use_chat_template), the unescaped, stripped text_system_start / text_prompt_start /
// text_answer_separator that are not empty.
std::vector<std::string> stop_words(const ExperimentConfig& cfg);

// The dataset settings for data::prepare_datasets.
data::DatasetSpec dataset_spec(const ExperimentConfig& cfg);

}  // namespace llmstudio::experiment
