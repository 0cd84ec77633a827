// Flags shared by `llmstudio generate` and `llmstudio chat`: model + adapter loading, prompt format,
// generation settings and stop strings, and turning them into library objects.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/prompting.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/tokenizer/tokenizer.h"

namespace llmstudio::cli {

struct GenerationFlags {
  std::string model, adapter, device, dtype = "auto", system, prompt_format;
  bool merge = false, greedy = false, do_sample = false;
  std::int64_t max_new_tokens = 256, min_new_tokens = 0, top_k = 0, num_beams = 1;
  double temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0, max_time = 0;
  std::optional<std::uint64_t> seed;
  std::vector<std::int64_t> eos;
  std::vector<std::string> stop;
};

void add_generation_flags(CLI::App* cmd, GenerationFlags& f);

// A loaded model with its tokenizer (when the folder has one) and the device it runs on.
struct LoadedModel {
  model::CausalLM lm;
  std::optional<tokenizer::Tokenizer> tok;
  std::string device;
};

// Loads the model, attaches --adapter (and merges it with --merge).
LoadedModel load_model(const GenerationFlags& f);
// The generation settings: the model's defaults (EOS from config/generation_config + the tokenizer's) and flags.
infer::GenerationConfig generation_config(const GenerationFlags& f, const LoadedModel& m);
// The prompt builder for --prompt-format (default: chat template if the tokenizer has one, else raw);
// `raw` forces raw.
infer::PromptBuilder prompt_builder(const GenerationFlags& f, const LoadedModel& m, bool raw);

}  // namespace llmstudio::cli
