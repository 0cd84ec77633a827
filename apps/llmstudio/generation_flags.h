// Flags shared by `llmstudio generate` and `llmstudio chat`: model + adapter loading, prompt format,
// generation settings and stop strings, and turning them into library objects.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/model_source.h"
#include "llmstudio/infer/prompting.h"

namespace llmstudio::cli {

struct GenerationFlags {
  std::string model, adapter, device, dtype = "auto", system, prompt_format;
  bool merge = false, greedy = false, do_sample = false;
  std::int64_t max_new_tokens = 256, min_new_tokens = 0, top_k = 0, num_beams = 1;
  double temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0, max_time = 0;
  std::optional<std::uint64_t> seed;
  std::vector<std::int64_t> eos;
  std::vector<std::string> stop;
  const CLI::App* cmd = nullptr;  // set by add_generation_flags: tells which flags were given
  bool given(const char* flag) const { return cmd && cmd->get_option(flag)->count() > 0; }
};

void add_generation_flags(CLI::App* cmd, GenerationFlags& f);

using infer::LoadedModel;

// Loads the model folder or experiment folder (-m), attaches --adapter (and merges it with --merge).
LoadedModel load_model(const GenerationFlags& f);
// The generation settings: the model's defaults (EOS from config/generation_config + the tokenizer's), an
// experiment's prediction settings, then the flags given on the command line.
infer::GenerationConfig generation_config(const GenerationFlags& f, const LoadedModel& m);
// The stop strings: an experiment's (H2O stop_tokens and prompt markers) and --stop.
std::vector<std::string> stop_strings(const GenerationFlags& f, const LoadedModel& m);
// The prompt builder for --prompt-format (default: chat template if the tokenizer has one, else raw);
// `raw` forces raw.
infer::PromptBuilder prompt_builder(const GenerationFlags& f, const LoadedModel& m, bool raw);

}  // namespace llmstudio::cli
