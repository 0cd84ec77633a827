// The piece list that flows through the encode pipeline (text pieces and already-matched added tokens) and the
// generic "split a piece by matches with a delimiter behaviour" operation shared by the Split, Metaspace,
// Digits, Punctuation, Whitespace... pre-tokenizers (same semantics as tokenizers' NormalizedString::split).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmstudio::tokenizer {

// One piece of the input: text still to be processed (token_id < 0), or an added token already matched.
struct Piece {
  std::string text;
  int32_t token_id = -1;
  bool at_start = false;  // starts at offset 0 of the original input (Metaspace prepend_scheme "first")
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Parses "Removed", "Isolated", ... (case-insensitive on the first letter); throws naming `context`.
SplitBehavior parse_split_behavior(const std::string& name, const std::string& context);

using Ranges = std::vector<std::pair<std::size_t, std::size_t>>;

// Given the matches (sorted, non-overlapping [begin, end) byte ranges) inside a text of `size` bytes, computes
// the ranges of the resulting pieces for `behavior` (empty ranges included; callers drop them).
Ranges split_ranges(std::size_t size, const Ranges& matches, SplitBehavior behavior, bool invert);

// Matches made of single characters for which pred(c) holds (each char is its own match).
Ranges char_matches(std::string_view text, const std::function<bool(char32_t)>& pred);

// Appends the non-empty pieces of `piece.text` cut at `ranges` to `out` (at_start kept for a piece at 0).
void emit_ranges(const Piece& piece, const Ranges& ranges, std::vector<Piece>& out);

}  // namespace llmstudio::tokenizer
