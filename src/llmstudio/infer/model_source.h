// What generation loads, from a Hugging Face model folder or from an experiment folder written by
// `llmstudio train`: the weights (+ a PEFT LoRA adapter, applied unmerged or merged), the tokenizer, the prompt
// format the model was trained with and the generation defaults (the model's generation_config.json, the
// tokenizer's EOS, the experiment's `prediction` section and H2O's stop words). Shared by the CLI
// (generate/chat/export) and the server (chat, OpenAI-compatible routes).
//
// An experiment folder is recognised by its cfg.yaml. A LoRA experiment resolves to its llm_backbone with the
// folder's adapter; a full fine-tuning experiment to the folder itself. An experiment that has not finished
// (no final model files yet) is an error that says so.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/prompting.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/tokenizer/tokenizer.h"
#include "llmstudio/experiment/experiment_config.h"

namespace llmstudio::infer {

struct ModelSource {
  std::filesystem::path model_dir;      // config.json + *.safetensors
  std::filesystem::path adapter_dir;    // PEFT adapter to apply ("" = none)
  std::filesystem::path tokenizer_dir;  // tokenizer.json / tokenizer_config.json (may lack them: ids only)
  std::optional<experiment::ExperimentConfig> experiment;  // set for an experiment folder
};

// True when `dir` holds a cfg.yaml (an experiment folder).
bool is_experiment_dir(const std::filesystem::path& dir);

// `path`: a model folder or an experiment folder. `adapter` (optional) adds an adapter to a model folder; an
// experiment with its own adapter refuses a second one.
ModelSource resolve_model_source(const std::filesystem::path& path, const std::filesystem::path& adapter = {});

struct ModelLoadOptions {
  std::string device;         // "" = $LLMSTUDIO_DEVICE or auto (platform::device_request_from)
  std::string dtype = "auto";
  bool merge = false;         // merge the adapter into the weights (faster decoding)
};

struct LoadedModel {
  model::CausalLM lm;
  std::optional<tokenizer::Tokenizer> tok;
  std::string device;
  ModelSource source;
};

LoadedModel load_for_generation(const ModelSource& source, const ModelLoadOptions& options);

// The model's defaults (generation_config.json EOS ids, the tokenizer's EOS), then, for an experiment, its
// prediction settings and its one-token stop words as EOS.
GenerationConfig default_generation_config(const LoadedModel& m);

// The experiment's stop words (experiment::stop_words); empty for a plain model folder.
std::vector<std::string> default_stop_strings(const LoadedModel& m);

// H2O's prediction section on `g`: max/min_length_inference, do_sample, temperature (H2O's 0 = greedy keeps
// g's), top_k, top_p, repetition_penalty, max_time, num_beams.
void apply_prediction_settings(GenerationConfig& g, const experiment::PredictionConfig& p);

// H2O also stops on the token ids of its stop words (a StoppingCriteria on `_stop_words_ids`): the stop words
// that are one token (the prompt markers usually are special tokens) are added to g's EOS ids; longer ones are
// matched in the text (infer::generate_text).
void add_stop_word_eos(GenerationConfig& g, const tokenizer::Tokenizer& tok, const std::vector<std::string>& stops);

// `format` if given; otherwise an experiment's training format (its chat template with use_chat_template, else
// H2O's markers with its dataset settings), otherwise the tokenizer's chat template, else raw.
PromptBuilder make_prompt_builder(const LoadedModel& m, std::optional<PromptFormat> format = std::nullopt);

}  // namespace llmstudio::infer
