// Token generation with a preallocated KV cache: batched prompts (left padding), prefill + decode steps,
// greedy or seeded sampling, per-sequence stop (EOS, length, caller's stop condition, time limit).
// The steps are infer/decode_step.h's (static shapes; a CUDA graph on CUDA), the token choice infer/sampling.h's
// TokenSampler (on the device); the host reads each step's tokens once, after the next step was queued.
// Settings follow H2O LLM Studio's prediction section (min/max_length_inference, do_sample, temperature,
// top_k, top_p, repetition_penalty, max_time, num_beams, stop tokens handled by the caller's callback).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "llmstudio/model/causal_lm.h"

namespace llmstudio::infer {

struct GenerationConfig {
  std::int64_t max_new_tokens = 256;  // H2O max_length_inference
  std::int64_t min_new_tokens = 0;    // H2O min_length_inference: EOS is suppressed before this many tokens
  bool do_sample = false;
  double temperature = 1.0;
  std::int64_t top_k = 0;        // 0 = off
  double top_p = 1.0;            // 1 = off
  double repetition_penalty = 1.0;
  double max_time = 0;           // seconds for the whole call, 0 = no limit
  std::int64_t num_beams = 1;    // beam search is not implemented: > 1 is refused
  std::optional<std::uint64_t> seed;
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t pad_token_id = 0;

  // Throws llmstudio::Error naming the setting, its value and the allowed range.
  void validate() const;
};

struct GeneratedSequence {
  std::vector<std::int64_t> tokens;  // new tokens; includes the EOS token when one ended the sequence
  std::string finish_reason;         // "eos", "length", "stop", "time"
};

// Called once per new token of each unfinished row (in row order within a step). Return true to stop that
// row after this token (stop strings, a closed stream...).
using TokenCallback = std::function<bool(std::size_t row, std::int64_t token)>;

// Defaults of a model folder: EOS/pad ids from config.json, overridden by generation_config.json when present.
GenerationConfig generation_defaults(const std::filesystem::path& model_dir, const model::ModelConfig& config);

std::vector<GeneratedSequence> generate(const model::CausalLM& lm, const std::vector<std::vector<std::int64_t>>& prompts,
                                        const GenerationConfig& config, const TokenCallback& on_token = {});

}  // namespace llmstudio::infer
