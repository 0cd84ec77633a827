// Text-level generation on top of infer::generate: decodes each row's tokens as they come, stops a row when
// its text reaches a stop string (the stop string and what follows it are cut from the output, as H2O LLM
// Studio does with its stop_tokens), streams text increments that can no longer change (UTF-8 characters
// are never split, and text that could be the start of a stop string is held back until it is decided),
// and merges the tokenizer's EOS into the model's EOS ids.
// The per-token work is host-side string handling on ids generate() already copied to the host; it adds
// no device synchronisation.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "llmstudio/infer/generation.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/tokenizer/tokenizer.h"

namespace llmstudio::infer {

struct TextGenerationResult {
  std::vector<std::int64_t> tokens;  // generated ids (through the token that completed a stop string)
  std::string text;                  // decoded without special tokens, cut before the first stop string
  std::string finish_reason;         // "eos", "length", "stop", "time"
};

// Called with text that became final for a row (possibly several times per token, never empty).
using TextCallback = std::function<void(std::size_t row, std::string_view text)>;

// Adds the tokenizer's eos id to config.eos_token_ids (config.json / generation_config.json ids stay first).
void add_tokenizer_eos(GenerationConfig& config, const tokenizer::Tokenizer& tok);

// Earliest position in `text` where one of `stops` starts, searching from `from`; npos if none.
std::size_t find_stop(std::string_view text, const std::vector<std::string>& stops, std::size_t from = 0);
// Length of the longest suffix of `text` that is a proper prefix of a stop string (text to hold back).
std::size_t stop_prefix_suffix(std::string_view text, const std::vector<std::string>& stops);

std::vector<TextGenerationResult> generate_text(const model::CausalLM& lm, const tokenizer::Tokenizer& tok,
                                                const std::vector<std::vector<std::int64_t>>& prompts,
                                                const GenerationConfig& config,
                                                const std::vector<std::string>& stop_strings = {},
                                                const TextCallback& on_text = {});

}  // namespace llmstudio::infer
