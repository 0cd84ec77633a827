// Flags shared by `generate` and `chat` (see generation_flags.h).
#include "generation_flags.h"

#include <filesystem>
#include <iostream>

#include "llmstudio/core/error.h"
#include "llmstudio/infer/text_generation.h"

namespace llmstudio::cli {
namespace fs = std::filesystem;

void add_generation_flags(CLI::App* cmd, GenerationFlags& o) {
  o.cmd = cmd;
  cmd->add_option("-m,--model,-e,--experiment", o.model,
                  "Model folder (config.json, *.safetensors, tokenizer.json) or experiment folder from `llmstudio "
                  "train` (its adapter, prompt format and prediction settings are used)")
      ->required();
  cmd->add_option("--adapter", o.adapter, "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)");
  cmd->add_flag("--merge", o.merge, "Merge the adapter into the weights before generating (faster decoding)");
  cmd->add_option("--system", o.system, "System prompt");
  cmd->add_option("--prompt-format", o.prompt_format,
                  "chat-template|h2o|raw (default: chat-template if the tokenizer has one, else raw)");
  cmd->add_option("--stop", o.stop, "Stop string (repeatable): a row ends when its text reaches it; it is cut");
  cmd->add_option("--max-new-tokens", o.max_new_tokens, "Tokens to generate at most (H2O max_length_inference)");
  cmd->add_option("--min-new-tokens", o.min_new_tokens, "EOS is suppressed before this many (H2O min_length_inference)");
  cmd->add_flag("--greedy", o.greedy, "Greedy decoding (default)");
  cmd->add_flag("--do-sample", o.do_sample, "Sample with temperature/top-k/top-p");
  cmd->add_option("--temperature", o.temperature, "Sampling temperature");
  cmd->add_option("--top-k", o.top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", o.top_p, "Nucleus sampling threshold (1 = off)");
  cmd->add_option("--repetition-penalty", o.repetition_penalty, "Penalty for tokens already seen (1 = off)");
  cmd->add_option("--max-time", o.max_time, "Stop after this many seconds (0 = no limit)");
  cmd->add_option("--num-beams", o.num_beams, "Beam search is not implemented: only 1");
  cmd->add_option("--seed", o.seed, "Random seed for sampling (reproducible output)");
  cmd->add_option("--eos-id", o.eos, "End-of-sequence token id(s) (default: the model's and the tokenizer's)");
  cmd->add_option("--device", o.device, "auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->add_option("--dtype", o.dtype, "auto|float32|bfloat16|float16");
}

LoadedModel load_model(const GenerationFlags& o) {
  LLMS_CHECK(!(o.greedy && o.do_sample), "--greedy and --do-sample exclude each other");
  LLMS_CHECK(!o.merge || !o.adapter.empty() || infer::is_experiment_dir(o.model),
             "--merge needs --adapter <dir> (or a LoRA experiment folder as -m)");
  auto source = infer::resolve_model_source(o.model, o.adapter);
  return infer::load_for_generation(source, {o.device, o.dtype, o.merge && !source.adapter_dir.empty()});
}

infer::GenerationConfig generation_config(const GenerationFlags& o, const LoadedModel& m) {
  infer::GenerationConfig g = infer::default_generation_config(m);
  // A plain model folder takes every flag's value (defaults included); an experiment keeps its prediction
  // settings unless a flag is given.
  const bool all = !m.source.experiment;
  auto set = [&](const char* flag, auto& field, const auto& value) {
    if (all || o.given(flag)) field = value;
  };
  set("--max-new-tokens", g.max_new_tokens, o.max_new_tokens);
  set("--min-new-tokens", g.min_new_tokens, o.min_new_tokens);
  if (o.do_sample) g.do_sample = true;
  if (o.greedy) g.do_sample = false;
  if (all) g.do_sample = o.do_sample;
  set("--temperature", g.temperature, o.temperature);
  set("--top-k", g.top_k, o.top_k);
  set("--top-p", g.top_p, o.top_p);
  set("--repetition-penalty", g.repetition_penalty, o.repetition_penalty);
  set("--max-time", g.max_time, o.max_time);
  set("--num-beams", g.num_beams, o.num_beams);
  g.seed = o.seed;
  if (!o.eos.empty()) g.eos_token_ids = o.eos;
  g.validate();
  return g;
}

std::vector<std::string> stop_strings(const GenerationFlags& o, const LoadedModel& m) {
  auto stops = infer::default_stop_strings(m);
  stops.insert(stops.end(), o.stop.begin(), o.stop.end());
  return stops;
}

infer::PromptBuilder prompt_builder(const GenerationFlags& o, const LoadedModel& m, bool raw) {
  std::optional<infer::PromptFormat> format;
  if (!o.prompt_format.empty()) format = infer::parse_prompt_format(o.prompt_format);
  LLMS_CHECK(!raw || !format || *format == infer::PromptFormat::raw, "--raw and --prompt-format ", o.prompt_format,
             " exclude each other");
  if (raw) format = infer::PromptFormat::raw;
  return infer::make_prompt_builder(m, format);
}

}  // namespace llmstudio::cli
