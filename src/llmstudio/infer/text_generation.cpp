// Text-level generation: stop strings, streaming through infer::TextStream, EOS merging (see text_generation.h).
#include "llmstudio/infer/text_generation.h"

#include <algorithm>

#include "llmstudio/core/error.h"
#include "llmstudio/infer/text_stream.h"

namespace llmstudio::infer {

void add_tokenizer_eos(GenerationConfig& config, const tokenizer::Tokenizer& tok) {
  if (auto eos = tok.eos_id()) {
    if (std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), *eos) == config.eos_token_ids.end())
      config.eos_token_ids.push_back(*eos);
  }
}

std::size_t find_stop(std::string_view text, const std::vector<std::string>& stops, std::size_t from) {
  std::size_t best = std::string_view::npos;
  for (const auto& s : stops) {
    if (s.empty()) continue;
    const std::size_t start = from > s.size() ? from - s.size() : 0;  // a stop may straddle `from`
    const std::size_t pos = text.find(s, start);
    if (pos != std::string_view::npos && pos < best) best = pos;
  }
  return best;
}

std::size_t stop_prefix_suffix(std::string_view text, const std::vector<std::string>& stops) {
  std::size_t best = 0;
  for (const auto& s : stops)
    for (std::size_t n = std::min(s.size() - (s.empty() ? 0 : 1), text.size()); n > best; --n)
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        best = n;
        break;
      }
  return best;
}

namespace {

// One row's decoding state: the row's stream (text final so far, never a split UTF-8 character), the text
// cut at a stop string once one is found, and how much of it the callback has seen.
struct RowState {
  explicit RowState(const tokenizer::Tokenizer& tok) : stream(tok, true) {}
  TextStream stream;
  std::string text;
  std::size_t sent = 0;
  bool stopped = false;
};

}  // namespace

std::vector<TextGenerationResult> generate_text(const model::CausalLM& lm, const tokenizer::Tokenizer& tok,
                                                const std::vector<std::vector<std::int64_t>>& prompts,
                                                const GenerationConfig& config,
                                                const std::vector<std::string>& stop_strings,
                                                const TextCallback& on_text) {
  std::vector<RowState> rows;
  rows.reserve(prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) rows.emplace_back(tok);
  auto emit = [&](std::size_t row, std::size_t upto) {
    RowState& r = rows[row];
    if (upto > r.sent) {
      if (on_text) on_text(row, std::string_view(r.text).substr(r.sent, upto - r.sent));
      r.sent = upto;
    }
  };
  const bool per_token = !stop_strings.empty() || static_cast<bool>(on_text);
  auto sequences = generate(lm, prompts, config, [&](std::size_t row, std::int64_t token) {
    if (!per_token) return false;  // nothing to decide per token: the text is decoded once at the end
    RowState& r = rows[row];
    const std::size_t before = r.text.size();
    r.text += r.stream.push(token);
    if (!stop_strings.empty()) {
      const std::size_t pos = find_stop(r.text, stop_strings, before);
      if (pos != std::string::npos) {
        r.text.resize(pos);
        r.stopped = true;
        emit(row, r.text.size());
        return true;
      }
      emit(row, r.text.size() - stop_prefix_suffix(r.text, stop_strings));
    } else {
      emit(row, r.text.size());
    }
    return false;
  });
  std::vector<TextGenerationResult> out(sequences.size());
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    RowState& r = rows[i];
    if (!r.stopped) {  // the final text, held-back bytes included
      std::vector<int32_t> ids(sequences[i].tokens.begin(), sequences[i].tokens.end());
      r.text = tok.decode(ids, true);
      if (r.sent > r.text.size()) r.sent = r.text.size();
      emit(i, r.text.size());
    }
    out[i].tokens = std::move(sequences[i].tokens);
    out[i].text = std::move(r.text);
    out[i].finish_reason = sequences[i].finish_reason;
  }
  return out;
}

}  // namespace llmstudio::infer
