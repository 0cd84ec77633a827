// Model folders and experiment folders as generation sources (see model_source.h).
#include "llmstudio/infer/model_source.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "llmstudio/core/error.h"
#include "llmstudio/experiment/experiment_dir.h"
#include "llmstudio/infer/text_generation.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/model/lora.h"
#include "llmstudio/platform/platform.h"

namespace llmstudio::infer {
namespace fs = std::filesystem;

bool is_experiment_dir(const fs::path& dir) { return experiment::ExperimentDir(dir).has_config(); }

ModelSource resolve_model_source(const fs::path& path, const fs::path& adapter) {
  LLMS_CHECK(fs::is_directory(path), "model '", path.string(),
             "' is not a folder; expected a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) "
             "or an experiment folder written by `llmstudio train` (cfg.yaml)");
  ModelSource s;
  if (!is_experiment_dir(path)) {
    s.model_dir = s.tokenizer_dir = path;
    s.adapter_dir = adapter;
    return s;
  }
  const experiment::ExperimentDir dir(path);
  s.experiment = experiment::load_experiment_config(dir.config_file());
  const auto m = experiment::resolve_experiment_model(dir, s.experiment->llm_backbone);
  s.model_dir = m.model_dir;
  s.tokenizer_dir = m.tokenizer_dir;
  if (m.adapter_dir.empty()) {
    s.adapter_dir = adapter;
  } else {
    LLMS_CHECK(adapter.empty(), "experiment ", path.string(), " is a LoRA experiment with its own adapter; --adapter ",
               adapter.string(), " cannot be added to it");
    s.adapter_dir = m.adapter_dir;
  }
  return s;
}

LoadedModel load_for_generation(const ModelSource& source, const ModelLoadOptions& options) {
  LLMS_CHECK(!options.merge || !source.adapter_dir.empty(), "merging needs an adapter (--adapter <dir>)");
  auto facts = platform::probe_platform();
  auto choice = platform::choose_device(facts, platform::device_request_from(options.device), options.dtype);
  LoadedModel m{model::CausalLM::load(source.model_dir, {choice.device, choice.dtype}), std::nullopt, choice.device,
                source};
  if (!source.adapter_dir.empty()) {
    model::load_peft_adapter(m.lm, source.adapter_dir);
    if (options.merge) model::merge_lora(m.lm);
  }
  if (fs::exists(source.tokenizer_dir / "tokenizer.json")) m.tok = tokenizer::Tokenizer::from_path(source.tokenizer_dir);
  return m;
}

void apply_prediction_settings(GenerationConfig& g, const experiment::PredictionConfig& p) {
  g.max_new_tokens = p.max_length_inference;
  g.min_new_tokens = p.min_length_inference;
  g.do_sample = p.do_sample;
  if (p.temperature > 0) g.temperature = p.temperature;  // H2O's 0 means greedy (with do_sample off)
  g.top_k = p.top_k;
  g.top_p = p.top_p;
  g.repetition_penalty = p.repetition_penalty;
  g.max_time = p.max_time;
  g.num_beams = p.num_beams;
}

void add_stop_word_eos(GenerationConfig& g, const tokenizer::Tokenizer& tok, const std::vector<std::string>& stops) {
  for (const auto& s : stops) {
    const auto ids = tok.encode(s, false);
    if (ids.size() == 1 && std::find(g.eos_token_ids.begin(), g.eos_token_ids.end(), ids[0]) == g.eos_token_ids.end())
      g.eos_token_ids.push_back(ids[0]);
  }
}

GenerationConfig default_generation_config(const LoadedModel& m) {
  GenerationConfig g = generation_defaults(m.source.model_dir, m.lm.config());
  if (m.tok) add_tokenizer_eos(g, *m.tok);
  if (m.source.experiment) {
    apply_prediction_settings(g, m.source.experiment->prediction);
    if (m.tok) add_stop_word_eos(g, *m.tok, default_stop_strings(m));
  }
  return g;
}

std::vector<std::string> default_stop_strings(const LoadedModel& m) {
  return m.source.experiment ? experiment::stop_words(*m.source.experiment) : std::vector<std::string>{};
}

PromptBuilder make_prompt_builder(const LoadedModel& m, std::optional<PromptFormat> format) {
  LLMS_CHECK(m.tok.has_value(), "text prompts need a tokenizer.json in ", m.source.tokenizer_dir.string(),
             "; give token ids instead");
  tokenizer::PromptFormatConfig h2o;
  if (m.source.experiment) {
    h2o = experiment::prompt_format_config(*m.source.experiment);
    if (!format) format = h2o.use_chat_template ? PromptFormat::chat_template : PromptFormat::h2o;
  }
  return PromptBuilder(*m.tok, m.source.tokenizer_dir, format, h2o);
}

}  // namespace llmstudio::infer
