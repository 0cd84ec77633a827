// The experiment config's key table and its text forms (see config_schema.h).
#include "llmstudio/experiment/config_schema.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "llmstudio/data/table.h"
#include "llmstudio/experiment/experiment_config.h"

namespace llmstudio::experiment {
namespace {

using StringList = std::vector<std::string>;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

FieldRef field_ref(std::string& v) { return &v; }
FieldRef field_ref(bool& v) { return &v; }
FieldRef field_ref(std::int64_t& v) { return &v; }
FieldRef field_ref(double& v) { return &v; }
FieldRef field_ref(StringList& v) { return &v; }
template <typename E>
  requires std::is_enum_v<E>
FieldRef field_ref(E& v) {
  return choice_ref(v);
}
#define LLMS_FIELD(path) +[](ExperimentConfig& c) -> FieldRef { return field_ref(c.path); }

template <typename E>
constexpr std::span<const std::string_view> names_of() {
  return EnumNames<E>::names;
}

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxBatch = 65536;               // samples per batch (training and inference)
constexpr double kMaxTokens = double(1 << 20);    // tokens per sample or generation
// Integers with an upper bound too: a value past it (lora_r = 2^62, batch_size = 1e12) would only exhaust memory or
// time once training starts, so it is refused up front with the allowed range.
constexpr Bounds closed(double lo, double hi) { return {lo, hi}; }
constexpr Bounds at_least(double lo) { return {lo, kInf}; }
constexpr Bounds positive() { return {0, kInf, true}; }
constexpr Bounds probability() { return {0, 1}; }
constexpr Bounds fraction_below_one() { return {0, 1, false, true}; }

constexpr std::array<std::string_view, 6> kProblemTypes = {
    "text_causal_language_modeling",      "text_causal_classification_modeling", "text_causal_regression_modeling",
    "text_sequence_to_sequence_modeling", "text_dpo_modeling",                   "text_rlhf_language_modeling"};

SpecialValue other_problem_type(std::string_view name) {
  return {name, ValueAction::Refuse, "only text_causal_language_modeling is implemented",
          "other H2O problem types are separate work; use problem_type: text_causal_language_modeling"};
}

// Rows for H2O keys without effect here.
KeySpec ignored(std::string_view section, std::string_view key, ValueType type, std::string_view h2o_default,
                std::string_view inert, std::string_view reason, std::string_view help) {
  KeySpec k{.section = section, .key = key, .status = KeyStatus::Ignored, .help = help};
  k.h2o_type = type;
  k.h2o_default = h2o_default;
  k.inert = inert;
  k.reason = reason;
  return k;
}
KeySpec refused(std::string_view section, std::string_view key, ValueType type, std::string_view h2o_default,
                std::string_view reason, std::string_view help) {
  KeySpec k = ignored(section, key, type, h2o_default, h2o_default, reason, help);
  k.status = KeyStatus::Refused;
  return k;
}

constexpr std::string_view kClassHook = "H2O's Python class hook (never written to cfg.yaml); llmstudio has one built-in "
                                        "implementation";
constexpr std::string_view kRlhf = "RLHF setting of older H2O versions; only meaningful with training.use_rlhf, which is "
                                   "refused";
constexpr std::string_view kDeepSpeed = "DeepSpeed is not supported (single-device training)";
constexpr std::string_view kNoLogger = "only local logs here (no Neptune / W&B without network access)";

std::vector<KeySpec> build_table() {
  using V = ValueType;
  std::vector<KeySpec> t = {
      // ---- top level
      {.section = "", .key = "experiment_name", .help = "Name of the experiment (its folder under output_directory)",
       .field = LLMS_FIELD(experiment_name)},
      {.section = "", .key = "output_directory", .help = "Folder the experiment writes to (checkpoints, logs, cfg.yaml)",
       .field = LLMS_FIELD(output_directory)},
      {.section = "", .key = "llm_backbone",
       .help = "Local model folder to fine-tune (config.json, *.safetensors, tokenizer.json); differs from H2O: no "
               "Hub download",
       .field = LLMS_FIELD(llm_backbone)},
      {.section = "", .key = "problem_type", .help = "H2O problem type; only causal language modeling is implemented",
       .field = LLMS_FIELD(problem_type), .choices = kProblemTypes,
       .special = {other_problem_type(kProblemTypes[1]), other_problem_type(kProblemTypes[2]),
                   other_problem_type(kProblemTypes[3]), other_problem_type(kProblemTypes[4]),
                   other_problem_type(kProblemTypes[5])}},

      // ---- dataset
      {.section = "dataset", .key = "train_dataframe", .help = "Training data file (.csv, .jsonl, .parquet)",
       .field = LLMS_FIELD(dataset.train_dataframe)},
      {.section = "dataset", .key = "validation_strategy",
       .help = "automatic: hold out validation_size of the training data; custom: a separate validation file",
       .field = LLMS_FIELD(dataset.validation_strategy), .choices = names_of<ValidationStrategy>()},
      {.section = "dataset", .key = "validation_dataframe",
       .help = "Validation data file (validation_strategy custom); None = none",
       .field = LLMS_FIELD(dataset.validation_dataframe)},
      {.section = "dataset", .key = "validation_size",
       .help = "Fraction of the training data held out for validation (validation_strategy automatic)",
       .field = LLMS_FIELD(dataset.validation_size), .bounds = Bounds{0, 1, true, true}},
      {.section = "dataset", .key = "data_sample", .help = "Fraction of the data used (1.0 = all)",
       .field = LLMS_FIELD(dataset.data_sample), .bounds = Bounds{0, 1, true, false}},
      {.section = "dataset", .key = "data_sample_choice", .help = "Which splits data_sample applies to",
       .field = LLMS_FIELD(dataset.data_sample_choice), .choices = kDataSampleChoices},
      {.section = "dataset", .key = "system_column", .help = "Column with system prompts (None = no system prompts)",
       .field = LLMS_FIELD(dataset.system_column)},
      {.section = "dataset", .key = "prompt_column", .help = "Column(s) joined into the prompt",
       .field = LLMS_FIELD(dataset.prompt_column)},
      {.section = "dataset", .key = "prompt_column_separator",
       .help = "Separator between several prompt columns (escapes such as \\n are decoded)",
       .field = LLMS_FIELD(dataset.prompt_column_separator)},
      {.section = "dataset", .key = "answer_column", .help = "Column with the answers the model learns to write",
       .field = LLMS_FIELD(dataset.answer_column)},
      {.section = "dataset", .key = "parent_id_column",
       .help = "Column linking a row to the previous turn of its conversation (None = no chaining)",
       .field = LLMS_FIELD(dataset.parent_id_column)},
      {.section = "dataset", .key = "id_column", .help = "Column with row ids (what parent_id_column refers to)",
       .field = LLMS_FIELD(dataset.id_column)},
      {.section = "dataset", .key = "text_system_start", .help = "Marker before the system prompt",
       .field = LLMS_FIELD(dataset.text_system_start)},
      {.section = "dataset", .key = "text_prompt_start", .help = "Marker before each prompt",
       .field = LLMS_FIELD(dataset.text_prompt_start)},
      {.section = "dataset", .key = "text_answer_separator", .help = "Marker between a prompt and its answer",
       .field = LLMS_FIELD(dataset.text_answer_separator)},
      {.section = "dataset", .key = "add_eos_token_to_system", .help = "End the system prompt with the EOS token",
       .field = LLMS_FIELD(dataset.add_eos_token_to_system)},
      {.section = "dataset", .key = "add_eos_token_to_prompt", .help = "End each prompt with the EOS token",
       .field = LLMS_FIELD(dataset.add_eos_token_to_prompt)},
      {.section = "dataset", .key = "add_eos_token_to_answer", .help = "End each answer with the EOS token",
       .field = LLMS_FIELD(dataset.add_eos_token_to_answer)},
      {.section = "dataset", .key = "limit_chained_samples",
       .help = "Only whole conversations as samples (not each turn with its history)",
       .field = LLMS_FIELD(dataset.limit_chained_samples)},
      {.section = "dataset", .key = "mask_prompt_labels", .help = "Compute the loss on answers only",
       .field = LLMS_FIELD(dataset.mask_prompt_labels)},
      {.section = "dataset", .key = "only_last_answer",
       .help = "Train on the last answer of a conversation only (needs mask_prompt_labels)",
       .field = LLMS_FIELD(dataset.only_last_answer)},
      {.section = "dataset", .key = "use_chat_template",
       .help = "llmstudio addition: lay samples out with the model's chat template instead of the markers",
       .field = LLMS_FIELD(dataset.use_chat_template)},
      ignored("dataset", "dataset_class", V::Text, "", "", kClassHook, "H2O's dataset class"),
      ignored("dataset", "personalize", V::Bool, "false", "false",
              "personalization (chatbot name/author) is not supported",
              "Replace the chatbot's name and author in the training data"),
      ignored("dataset", "chatbot_name", V::Text, "h2oGPT", "", "only used with dataset.personalize, which is ignored",
              "Chatbot name for personalize"),
      ignored("dataset", "chatbot_author", V::Text, "H2O.ai", "", "only used with dataset.personalize, which is ignored",
              "Chatbot author for personalize"),

      // ---- tokenizer
      {.section = "tokenizer", .key = "max_length", .help = "Longest sample in tokens (longer ones are cut)",
       .field = LLMS_FIELD(tokenizer.max_length), .bounds = closed(1, kMaxTokens)},
      {.section = "tokenizer", .key = "padding_quantile", .help = "Pad each batch to this quantile of its lengths",
       .field = LLMS_FIELD(tokenizer.padding_quantile), .bounds = probability()},
      ignored("tokenizer", "max_length_prompt", V::Int, "256", "", "older H2O key; tokenizer.max_length rules",
              "Longest prompt in tokens (older H2O versions)"),
      ignored("tokenizer", "max_length_answer", V::Int, "256", "", "older H2O key; tokenizer.max_length rules",
              "Longest answer in tokens (older H2O versions)"),
      ignored("tokenizer", "add_prompt_answer_tokens", V::Bool, "false", "false",
              "adding marker tokens to the vocabulary is not supported",
              "Add the prompt/answer markers to the vocabulary as new tokens"),
      ignored("tokenizer", "tokenizer_kwargs", V::Text, "'{\"use_fast\": true, \"add_prefix_space\": false}'", "",
              "the tokenizer's own tokenizer.json settings are used", "Extra arguments for the Hugging Face tokenizer"),
      ignored("tokenizer", "use_fast", V::Bool, "true", "", "older H2O key; llmstudio has one native tokenizer",
              "Use the fast (Rust) Hugging Face tokenizer (older H2O versions)"),
      ignored("tokenizer", "add_prefix_space", V::Bool, "false", "false",
              "the tokenizer's own tokenizer.json settings are used", "Add a space before the text (older H2O versions)"),

      // ---- architecture
      {.section = "architecture", .key = "backbone_dtype",
       .help = "Weights dtype (auto: bfloat16 where the device supports it, else float32); differs from H2O's int4",
       .field = LLMS_FIELD(architecture.backbone_dtype), .choices = names_of<BackboneDtype>(),
       .special = {{"int8", ValueAction::Refuse, "native quantization is separate work",
                    "--set architecture.backbone_dtype=bfloat16 (or float16, float32, auto)"},
                   {"int4", ValueAction::Refuse, "native quantization is separate work",
                    "--set architecture.backbone_dtype=bfloat16 (or float16, float32, auto)"}}},
      {.section = "architecture", .key = "gradient_checkpointing",
       .help = "Recompute activations in the backward pass to save memory",
       .field = LLMS_FIELD(architecture.gradient_checkpointing)},
      {.section = "architecture", .key = "intermediate_dropout", .help = "Dropout inside the backbone's layers",
       .field = LLMS_FIELD(architecture.intermediate_dropout), .bounds = fraction_below_one()},
      {.section = "architecture", .key = "pretrained_weights",
       .help = "Start from the weights of another experiment (its folder); empty = the backbone's",
       .field = LLMS_FIELD(architecture.pretrained_weights)},
      ignored("architecture", "model_class", V::Text, "", "", kClassHook, "H2O's model class"),
      refused("architecture", "pretrained", V::Bool, "true", "training from random weights",
              "Start from the backbone's pretrained weights (false: random initialisation)"),
      ignored("architecture", "force_embedding_gradients", V::Bool, "false", "false",
              "embeddings are trained only without LoRA", "Train the embeddings with LoRA (older H2O versions)"),

      // ---- training
      {.section = "training", .key = "loss_function", .help = "Training loss (averaged over tokens or over samples)",
       .field = LLMS_FIELD(training.loss_function), .choices = names_of<LossFunction>()},
      {.section = "training", .key = "optimizer", .help = "Optimizer",
       .field = LLMS_FIELD(training.optimizer), .choices = names_of<OptimizerKind>(),
       .special = {{"AdamW8bit", ValueAction::Refuse, "8-bit optimizers need bitsandbytes",
                    "--set training.optimizer=AdamW"}}},
      {.section = "training", .key = "learning_rate", .help = "Peak learning rate",
       .field = LLMS_FIELD(training.learning_rate), .bounds = positive()},
      {.section = "training", .key = "differential_learning_rate_layers",
       .help = "Parameters whose name contains one of these train at differential_learning_rate",
       .field = LLMS_FIELD(training.differential_learning_rate_layers)},
      {.section = "training", .key = "differential_learning_rate",
       .help = "Learning rate of differential_learning_rate_layers",
       .field = LLMS_FIELD(training.differential_learning_rate), .bounds = positive()},
      {.section = "training", .key = "freeze_layers",
       .help = "Layers (name substrings: embed, layer, head, ...) kept frozen in full fine-tuning",
       .field = LLMS_FIELD(training.freeze_layers)},
      {.section = "training", .key = "batch_size", .help = "Samples per batch (per accumulation step)",
       .field = LLMS_FIELD(training.batch_size), .bounds = closed(1, kMaxBatch)},
      {.section = "training", .key = "drop_last_batch", .help = "Drop the last, incomplete training batch of an epoch",
       .field = LLMS_FIELD(training.drop_last_batch)},
      {.section = "training", .key = "epochs", .help = "Passes over the training data",
       .field = LLMS_FIELD(training.epochs), .bounds = closed(0, 10000)},
      {.section = "training", .key = "schedule", .help = "Learning-rate schedule after the warm-up",
       .field = LLMS_FIELD(training.schedule), .choices = names_of<ScheduleKind>()},
      {.section = "training", .key = "min_learning_rate_ratio",
       .help = "The schedule decays to learning_rate times this",
       .field = LLMS_FIELD(training.min_learning_rate_ratio), .bounds = probability()},
      {.section = "training", .key = "warmup_epochs", .help = "Epochs of linear warm-up from 0",
       .field = LLMS_FIELD(training.warmup_epochs), .bounds = closed(0, 10000)},
      {.section = "training", .key = "weight_decay", .help = "Weight decay (not on biases and norms)",
       .field = LLMS_FIELD(training.weight_decay), .bounds = at_least(0)},
      {.section = "training", .key = "gradient_clip", .help = "Clip the gradient norm to this (0 = off)",
       .field = LLMS_FIELD(training.gradient_clip), .bounds = at_least(0)},
      {.section = "training", .key = "grad_accumulation", .help = "Batches accumulated per optimizer step",
       .field = LLMS_FIELD(training.grad_accumulation), .bounds = closed(1, 65536)},
      {.section = "training", .key = "lora", .help = "Train a LoRA adapter (false: full fine-tuning)",
       .field = LLMS_FIELD(training.lora)},
      {.section = "training", .key = "use_dora", .help = "Weight-decomposed LoRA (DoRA, as PEFT)",
       .field = LLMS_FIELD(training.use_dora)},
      {.section = "training", .key = "lora_r", .help = "LoRA rank", .field = LLMS_FIELD(training.lora_r),
       .bounds = closed(1, 4096)},
      {.section = "training", .key = "lora_alpha", .help = "LoRA scaling numerator (scale = alpha / r)",
       .field = LLMS_FIELD(training.lora_alpha), .bounds = closed(1, 1 << 20)},
      {.section = "training", .key = "lora_dropout", .help = "Dropout on the LoRA input",
       .field = LLMS_FIELD(training.lora_dropout), .bounds = fraction_below_one()},
      {.section = "training", .key = "use_rslora", .help = "Rank-stabilised LoRA: scale = alpha / sqrt(r)",
       .field = LLMS_FIELD(training.use_rslora)},
      {.section = "training", .key = "lora_target_modules",
       .help = "Comma-separated module names LoRA adapts (empty = all linear layers of the blocks)",
       .field = LLMS_FIELD(training.lora_target_modules)},
      {.section = "training", .key = "lora_unfreeze_layers",
       .help = "Layers trained fully next to LoRA (embed, head, or name substrings)",
       .field = LLMS_FIELD(training.lora_unfreeze_layers)},
      {.section = "training", .key = "save_checkpoint",
       .help = "Which weights to keep: the last, the best evaluation's, one per evaluation, or none",
       .field = LLMS_FIELD(training.save_checkpoint), .choices = names_of<SaveCheckpoint>()},
      {.section = "training", .key = "evaluation_epochs", .help = "Validate every this many epochs",
       .field = LLMS_FIELD(training.evaluation_epochs), .bounds = Bounds{0, 10000, true, false}},
      {.section = "training", .key = "evaluate_before_training", .help = "Validate once before the first step",
       .field = LLMS_FIELD(training.evaluate_before_training)},
      {.section = "training", .key = "train_validation_data",
       .help = "Also train on the validation data (validation still runs)",
       .field = LLMS_FIELD(training.train_validation_data)},
      {.section = "training", .key = "packing",
       .help = "llmstudio addition: pack samples into rows of tokenizer.max_length",
       .field = LLMS_FIELD(training.packing)},
      ignored("training", "loss_class", V::Text, "", "", kClassHook, "H2O's loss class"),
      ignored("training", "attention_implementation", V::Text, "auto", "auto",
              "llmstudio always uses its SDPA attention", "Attention kernel (auto, eager, flash_attention_2, sdpa)"),
      ignored("training", "use_flash_attention_2", V::Bool, "false", "false", "llmstudio always uses its SDPA attention",
              "Flash Attention 2 (older H2O versions)"),
      ignored("training", "save_best_checkpoint", V::Bool, "false", "false",
              "older H2O key; use training.save_checkpoint: best", "Keep the best checkpoint (older H2O versions)"),
      refused("training", "use_rlhf", V::Bool, "false", "RLHF training", "Train with RLHF (older H2O versions)"),
      ignored("training", "reward_model", V::Text, "OpenAssistant/reward-model-deberta-v3-large-v2", "", kRlhf,
              "RLHF reward model"),
      ignored("training", "adaptive_kl_control", V::Bool, "true", "", kRlhf, "RLHF adaptive KL control"),
      ignored("training", "full_kl_penalty", V::Bool, "true", "", kRlhf, "RLHF full KL penalty"),
      ignored("training", "initial_kl_coefficient", V::Float, "0.2", "", kRlhf, "RLHF initial KL coefficient"),
      ignored("training", "kl_target", V::Float, "6.0", "", kRlhf, "RLHF KL target"),
      ignored("training", "kl_horizon", V::Int, "10000", "", kRlhf, "RLHF KL horizon"),
      ignored("training", "advantages_gamma", V::Float, "0.99", "", kRlhf, "RLHF advantages gamma"),
      ignored("training", "advantages_lambda", V::Float, "0.95", "", kRlhf, "RLHF advantages lambda"),
      ignored("training", "ppo_clip_policy", V::Float, "0.2", "", kRlhf, "RLHF PPO policy clip"),
      ignored("training", "ppo_clip_value", V::Float, "0.2", "", kRlhf, "RLHF PPO value clip"),
      ignored("training", "scaling_factor_value_loss", V::Float, "0.1", "", kRlhf, "RLHF value-loss scale"),
      ignored("training", "ppo_epochs", V::Int, "4", "", kRlhf, "RLHF PPO epochs"),
      ignored("training", "ppo_batch_size", V::Int, "1", "", kRlhf, "RLHF PPO batch size"),
      ignored("training", "ppo_generate_temperature", V::Float, "1.0", "", kRlhf, "RLHF PPO generation temperature"),
      ignored("training", "offload_reward_model", V::Bool, "false", "", kRlhf, "RLHF: keep the reward model on the CPU"),
      ignored("training", "rollout_steps", V::Int, "64", "", kRlhf, "RLHF rollout steps"),

      // ---- augmentation
      {.section = "augmentation", .key = "token_mask_probability",
       .help = "Probability of replacing an input token by the mask token in training (H2O's range: at most 0.9)",
       .field = LLMS_FIELD(augmentation.token_mask_probability), .bounds = closed(0, 0.9)},
      {.section = "augmentation", .key = "skip_parent_probability",
       .help = "Probability of dropping a conversation's earlier turns in training",
       .field = LLMS_FIELD(augmentation.skip_parent_probability), .bounds = probability()},
      {.section = "augmentation", .key = "random_parent_probability",
       .help = "Probability of prepending a random other sample as the history in training",
       .field = LLMS_FIELD(augmentation.random_parent_probability), .bounds = probability()},
      {.section = "augmentation", .key = "neftune_noise_alpha",
       .help = "NEFTune: uniform noise of this scale on the input embeddings in training (0 = off)",
       .field = LLMS_FIELD(augmentation.neftune_noise_alpha), .bounds = at_least(0)},
      ignored("augmentation", "nlp_augmentations_class", V::Text, "", "", kClassHook, "H2O's augmentation class"),

      // ---- prediction
      {.section = "prediction", .key = "metric",
       .help = "Validation metric (differs from H2O: no GPT judge, Perplexity by default)",
       .field = LLMS_FIELD(prediction.metric), .choices = names_of<MetricKind>(),
       .special = {{"GPT", ValueAction::Replace, "an external OpenAI judge"}}},
      {.section = "prediction", .key = "min_length_inference", .help = "Tokens generated at least",
       .field = LLMS_FIELD(prediction.min_length_inference), .bounds = closed(0, kMaxTokens)},
      {.section = "prediction", .key = "max_length_inference", .help = "Tokens generated at most",
       .field = LLMS_FIELD(prediction.max_length_inference), .bounds = closed(1, kMaxTokens)},
      {.section = "prediction", .key = "max_time", .help = "Seconds a generation may take (0 = no limit)",
       .field = LLMS_FIELD(prediction.max_time), .bounds = closed(0, 86400)},
      {.section = "prediction", .key = "batch_size_inference",
       .help = "Samples per batch when generating (0 = training.batch_size)",
       .field = LLMS_FIELD(prediction.batch_size_inference), .bounds = closed(0, kMaxBatch)},
      {.section = "prediction", .key = "do_sample", .help = "Sample instead of greedy decoding",
       .field = LLMS_FIELD(prediction.do_sample)},
      {.section = "prediction", .key = "num_beams", .help = "Beams of beam search (1 = none)",
       .field = LLMS_FIELD(prediction.num_beams), .bounds = closed(1, 256)},
      {.section = "prediction", .key = "temperature", .help = "Sampling temperature (with do_sample)",
       .field = LLMS_FIELD(prediction.temperature), .bounds = at_least(0)},
      {.section = "prediction", .key = "repetition_penalty", .help = "Penalty on repeated tokens (1.0 = none)",
       .field = LLMS_FIELD(prediction.repetition_penalty), .bounds = positive()},
      {.section = "prediction", .key = "stop_tokens", .help = "Comma-separated texts that end a generation",
       .field = LLMS_FIELD(prediction.stop_tokens)},
      {.section = "prediction", .key = "top_k", .help = "Sample from the k most likely tokens (0 = all)",
       .field = LLMS_FIELD(prediction.top_k), .bounds = closed(0, 1 << 24)},
      {.section = "prediction", .key = "top_p", .help = "Sample from the smallest set of tokens with this probability",
       .field = LLMS_FIELD(prediction.top_p), .bounds = Bounds{0, 1, true, false}},
      ignored("prediction", "metric_class", V::Text, "", "", kClassHook, "H2O's metric class"),
      ignored("prediction", "metric_gpt_model", V::Text, "gpt-3.5-turbo-0301", "",
              "only used with prediction.metric GPT, which is not available", "OpenAI model of the GPT metric"),
      ignored("prediction", "metric_gpt_template", V::Text, "general", "",
              "only used with prediction.metric GPT, which is not available", "Prompt template of the GPT metric"),
      ignored("prediction", "num_history", V::Int, "4", "",
              "H2O's chat tab setting; the chat keeps the whole conversation", "Turns of history in H2O's chat tab"),

      // ---- environment
      {.section = "environment", .key = "mixed_precision", .help = "Compute in mixed precision where it helps",
       .field = LLMS_FIELD(environment.mixed_precision)},
      {.section = "environment", .key = "mixed_precision_dtype", .help = "Mixed-precision dtype",
       .field = LLMS_FIELD(environment.mixed_precision_dtype), .choices = names_of<MixedPrecisionDtype>()},
      {.section = "environment", .key = "seed", .help = "Random seed (-1 = a random one, recorded)",
       .field = LLMS_FIELD(environment.seed), .bounds = at_least(-1)},
      ignored("environment", "gpus", V::List, "['0']", "", "the device is chosen with --device / LLMSTUDIO_DEVICE",
              "GPUs to train on"),
      ignored("environment", "compile_model", V::Bool, "false", "false", "torch.compile does not apply to llmstudio",
              "Compile the model with torch.compile"),
      ignored("environment", "use_deepspeed", V::Bool, "false", "false", kDeepSpeed, "Train with DeepSpeed"),
      ignored("environment", "deepspeed_method", V::Text, "ZeRO2", "", kDeepSpeed, "DeepSpeed ZeRO stage"),
      ignored("environment", "deepspeed_allgather_bucket_size", V::Int, "1000000", "", kDeepSpeed,
              "DeepSpeed all-gather bucket size"),
      ignored("environment", "deepspeed_reduce_bucket_size", V::Int, "1000000", "", kDeepSpeed,
              "DeepSpeed reduce bucket size"),
      ignored("environment", "deepspeed_stage3_prefetch_bucket_size", V::Int, "1000000", "", kDeepSpeed,
              "DeepSpeed ZeRO-3 prefetch bucket size"),
      ignored("environment", "deepspeed_stage3_param_persistence_threshold", V::Int, "1000000", "", kDeepSpeed,
              "DeepSpeed ZeRO-3 parameter persistence threshold"),
      ignored("environment", "use_fsdp", V::Bool, "false", "false", "FSDP is not supported (single-device training)",
              "Train with FSDP (older H2O versions)"),
      ignored("environment", "find_unused_parameters", V::Bool, "false", "",
              "a DistributedDataParallel setting; training is single-device", "DDP's find_unused_parameters"),
      ignored("environment", "trust_remote_code", V::Bool, "true", "",
              "llmstudio never runs model code from the model folder", "Run the model folder's Python code"),
      ignored("environment", "huggingface_branch", V::Text, "main", "", "no Hub download: llm_backbone is a local folder",
              "Hub branch of the backbone"),
      ignored("environment", "number_of_workers", V::Int, "4", "",
              "data loading runs in the training process (no worker processes)", "Data-loader worker processes"),

      // ---- logging
      {.section = "logging", .key = "logger",
       .help = "External logger; llmstudio writes its logs to the experiment folder only",
       .field = LLMS_FIELD(logging.logger), .choices = names_of<LoggerKind>(),
       .special = {{"Neptune", ValueAction::Ignore, "llmstudio writes its logs to the experiment folder only"},
                   {"W&B", ValueAction::Ignore, "llmstudio writes its logs to the experiment folder only"}}},
      ignored("logging", "plots_class", V::Text, "", "", kClassHook, "H2O's plots class"),
      ignored("logging", "neptune_project", V::Text, "", "", kNoLogger, "Neptune project"),
      ignored("logging", "wandb_project", V::Text, "", "", kNoLogger, "W&B project"),
      ignored("logging", "wandb_entity", V::Text, "", "", kNoLogger, "W&B entity"),
      ignored("logging", "number_of_texts", V::Int, "10", "", kNoLogger, "Texts logged per validation"),
      ignored("logging", "log_step_size", V::Text, "absolute", "", kNoLogger, "Step unit of logged charts"),
      ignored("logging", "log_all_ranks", V::Bool, "false", "", "training is single-device", "Log from every rank"),
  };
  return t;
}

std::string join(const std::vector<std::string_view>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::string(v[i]);
  return out;
}

// Floats as Python's yaml.dump writes them (1.0e-05: PyYAML reads "1e-05" as a string).
std::string yaml_float(double v) {
  std::string s = data::format_python_float(v);
  auto e = s.find('e');
  if (e != std::string::npos && s.find('.') == std::string::npos) s.insert(e, ".0");
  return s;
}

std::string md_cell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += "<br>";
    else out += c;
  }
  return out;
}

}  // namespace

const std::vector<KeySpec>& config_keys() {
  static const std::vector<KeySpec> table = build_table();
  return table;
}

const std::vector<std::string_view>& config_sections() {
  static const std::vector<std::string_view> sections = [] {
    std::vector<std::string_view> out;
    for (const auto& k : config_keys())
      if (std::find(out.begin(), out.end(), k.section) == out.end()) out.push_back(k.section);
    return out;
  }();
  return sections;
}

const KeySpec* find_key(std::string_view section, std::string_view key) {
  for (const auto& k : config_keys())
    if (k.section == section && k.key == key) return &k;
  return nullptr;
}

std::string dotted_key(const KeySpec& k) {
  return k.section.empty() ? std::string(k.key) : std::string(k.section) + "." + std::string(k.key);
}

ValueType value_type(const KeySpec& k) {
  if (!k.field) return k.h2o_type;
  ExperimentConfig c;
  const FieldRef f = k.field(c);
  switch (f.index()) {
    case 0: return k.choices.empty() ? ValueType::Text : ValueType::Choice;
    case 1: return ValueType::Bool;
    case 2: return ValueType::Int;
    case 3: return ValueType::Float;
    case 4: return ValueType::List;
    default: return ValueType::Choice;
  }
}

std::string_view to_string(KeyStatus s) {
  switch (s) {
    case KeyStatus::Implemented: return "implemented";
    case KeyStatus::Ignored: return "ignored";
    case KeyStatus::Refused: return "refused";
  }
  return "?";
}

std::string_view to_string(ValueType t) {
  switch (t) {
    case ValueType::Text: return "string";
    case ValueType::Bool: return "bool";
    case ValueType::Int: return "int";
    case ValueType::Float: return "float";
    case ValueType::List: return "list";
    case ValueType::Choice: return "enum";
  }
  return "?";
}

std::vector<std::string_view> offered_choices(const KeySpec& k) {
  std::vector<std::string_view> out;
  for (auto c : k.choices) {
    bool hidden = false;
    for (const auto& s : k.special) hidden = hidden || (s.value == c && s.action != ValueAction::Ignore);
    if (!hidden) out.push_back(c);
  }
  return out;
}

std::string field_text(const KeySpec& k, const ExperimentConfig& cfg) {
  // The accessor only forms a reference to the field; it is read here, never written.
  const FieldRef f = k.field(const_cast<ExperimentConfig&>(cfg));
  return std::visit(Overloaded{
                        [](std::string* p) { return *p; },
                        [](bool* p) { return std::string(*p ? "true" : "false"); },
                        [](std::int64_t* p) { return std::to_string(*p); },
                        [](double* p) { return yaml_float(*p); },
                        [](StringList* p) {
                          std::string out = "[";
                          for (std::size_t i = 0; i < p->size(); ++i) out += (i ? ", " : "") + (*p)[i];
                          return out + "]";
                        },
                        [&](ChoiceRef r) { return std::string(k.choices[r.get(r.field)]); },
                    },
                    f);
}

std::string default_text(const KeySpec& k) {
  if (!k.field) return std::string(k.h2o_default);
  static const ExperimentConfig defaults;
  return field_text(k, defaults);
}

std::string bounds_text(const KeySpec& k) {
  if (!k.bounds) return "";
  const Bounds& b = *k.bounds;
  const bool integral = value_type(k) == ValueType::Int;
  auto num = [&](double v) { return integral ? std::to_string(static_cast<std::int64_t>(v)) : data::format_python_float(v); };
  if (std::isinf(b.hi) && integral) return ">= " + num(b.lo);
  return std::string(b.lo_open ? "(" : "[") + num(b.lo) + ", " + (std::isinf(b.hi) ? "inf" : num(b.hi)) +
         (b.hi_open || std::isinf(b.hi) ? ")" : "]");
}

std::string config_reference_markdown() {
  std::ostringstream md;
  md << "# Experiment configuration reference\n\n"
        "Generated from the key table (`src/llmstudio/experiment/config_schema.cpp`) by `llmstudio config docs`;\n"
        "do not edit by hand (a unit test compares this file with the table).\n\n"
        "Configs use H2O LLM Studio's `cfg.yaml` layout: the top-level keys, then one mapping per section.\n"
        "`llmstudio config check -c cfg.yaml` validates one; `--set section.key=value` overrides a key.\n"
        "Status: **implemented** (does what H2O's key does), **ignored** (accepted without effect; a warning when\n"
        "its value would have changed H2O's behaviour, else a note), **refused** (any value but the inert one is an\n"
        "error).\n";
  for (auto section : config_sections()) {
    md << "\n## " << (section.empty() ? "Top level" : std::string(section)) << "\n\n"
       << "| key | type | default | allowed | status | help |\n|---|---|---|---|---|---|\n";
    for (const auto& k : config_keys()) {
      if (k.section != section) continue;
      std::string allowed = k.choices.empty() ? bounds_text(k) : join(offered_choices(k));
      std::string status(to_string(k.status));
      if (k.status != KeyStatus::Implemented) status += ": " + std::string(k.reason);
      for (std::size_t i = 0; i < k.special.size(); ++i) {  // values with the same fate and reason together
        const SpecialValue& s = k.special[i];
        const bool last = i + 1 == k.special.size() || k.special[i + 1].action != s.action ||
                          k.special[i + 1].reason != s.reason;
        const bool first = i == 0 || k.special[i - 1].action != s.action || k.special[i - 1].reason != s.reason;
        status += std::string(first ? "; `" : ", `") + std::string(s.value) + "`";
        if (!last) continue;
        const char* what = s.action == ValueAction::Refuse    ? "refused"
                           : s.action == ValueAction::Replace ? "replaced by the default"
                                                              : "ignored";
        status += std::string(" ") + what + ": " + std::string(s.reason);
      }
      const std::string def = default_text(k);
      md << "| `" << k.key << "` | " << to_string(value_type(k)) << " | " << (def.empty() ? "" : "`" + md_cell(def) + "`")
         << " | " << md_cell(allowed) << " | " << md_cell(status) << " | " << md_cell(k.help) << " |\n";
    }
  }
  return md.str();
}

}  // namespace llmstudio::experiment
