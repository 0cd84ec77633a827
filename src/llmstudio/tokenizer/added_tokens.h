// Added tokens of tokenizer.json ("added_tokens"): special and non-special tokens matched in the raw text
// before the model runs, exactly like tokenizers' AddedVocabulary: leftmost-longest matching, first the
// normalized=false tokens on the original text, then the normalized=true ones on each normalized piece;
// single_word, lstrip and rstrip options.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "llmstudio/tokenizer/splitting.h"

namespace llmstudio::tokenizer {

class Normalizer;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `normalizer` (may be null) normalizes the patterns of normalized=true tokens.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Cuts the text pieces of `pieces` around matches of the normalized=false (normalized=true) tokens; the
  // matches become pieces with token_id set. Empty text pieces are dropped.
  void split_raw(std::vector<Piece>& pieces) const { split(pieces, raw_); }
  void split_normalized(std::vector<Piece>& pieces) const { split(pieces, normalized_); }
  bool has_normalized_tokens() const { return !normalized_.patterns.empty(); }

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  std::optional<int32_t> token_to_id(std::string_view content) const;
  // Token string of an added id: its content, normalized for normalized=true tokens (as tokenizers does);
  // nullptr if not an added token.
  const std::string* id_to_token(int32_t id) const;
  bool is_special_content(std::string_view content) const { return special_.count(std::string(content)) != 0; }

 private:
  // Byte trie over the patterns; edges keyed by (node << 8 | byte).
  struct Matcher {
    std::vector<std::string> patterns;
    std::vector<int32_t> token_index;  // pattern -> index in tokens_
    std::unordered_map<uint64_t, int32_t> edges;
    std::vector<int32_t> terminal;  // node -> pattern index or -1
    bool first_byte[256] = {};
    void add(const std::string& pattern, int32_t token_index);
    // Longest pattern starting at pos: its length and index, or {0, -1}.
    std::pair<std::size_t, int32_t> longest_at(std::string_view text, std::size_t pos) const;
  };
  void split(std::vector<Piece>& pieces, const Matcher& m) const;
  void split_one(const Piece& piece, const Matcher& m, std::vector<Piece>& out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, int32_t> content_to_id_;
  std::unordered_map<int32_t, std::string> id_to_content_;
  std::unordered_set<std::string> special_;
  Matcher raw_, normalized_;
};

}  // namespace llmstudio::tokenizer
