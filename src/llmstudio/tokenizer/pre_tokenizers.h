// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): ByteLevel, Split, Metaspace, Digits, Whitespace,
// WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit, Sequence. Each cuts the text pieces of
// the piece list into smaller pieces (words for the model); added-token pieces pass through untouched.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "llmstudio/tokenizer/splitting.h"

namespace llmstudio::tokenizer {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every text piece (token_id < 0) of `pieces` by its sub-pieces; empty pieces are dropped.
  void pre_tokenize(std::vector<Piece>& pieces) const;
  // Splits one text piece, appending the non-empty results to `out`.
  virtual void split(const Piece& piece, std::vector<Piece>& out) const = 0;
};

// Builds a pre-tokenizer from its JSON object; throws llmstudio::Error naming `file` and the type if unsupported.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& file);

}  // namespace llmstudio::tokenizer
