// Delimiter-behaviour splitting shared by the pre-tokenizers (see splitting.h).
#include "llmstudio/tokenizer/splitting.h"

#include <algorithm>
#include <cctype>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::tokenizer {

SplitBehavior parse_split_behavior(const std::string& name, const std::string& context) {
  std::string n = name;
  if (!n.empty()) n[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(n[0])));
  if (n == "Removed") return SplitBehavior::Removed;
  if (n == "Isolated") return SplitBehavior::Isolated;
  if (n == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (n == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (n == "Contiguous") return SplitBehavior::Contiguous;
  fail(context, ": unknown split behavior \"", name,
       "\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

Ranges split_ranges(std::size_t size, const Ranges& matches, SplitBehavior behavior, bool invert) {
  // 1. The whole text as alternating (range, is_match) spans.
  struct Span {
    std::size_t begin, end;
    bool is_match;
  };
  std::vector<Span> spans;
  if (size == 0) {
    spans.push_back({0, 0, false});
  } else {
    std::size_t prev = 0;
    for (auto [b, e] : matches) {
      if (prev != b) spans.push_back({prev, b, false});
      spans.push_back({b, e, true});
      prev = e;
    }
    if (prev != size) spans.push_back({prev, size, false});
  }
  if (invert)
    for (auto& s : spans) s.is_match = !s.is_match;

  Ranges out;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (auto& s : spans) out.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::Removed:
      for (auto& s : spans)
        if (!s.is_match) out.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::Contiguous: {
      bool prev_match = false;
      for (auto& s : spans) {
        if (s.is_match == prev_match && !out.empty())
          out.back().second = s.end;
        else
          out.emplace_back(s.begin, s.end);
        prev_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev_match = false;
      for (auto& s : spans) {
        if (s.is_match && !prev_match && !out.empty())
          out.back().second = s.end;
        else
          out.emplace_back(s.begin, s.end);
        prev_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !prev_match && !out.empty())
          out.back().first = it->begin;
        else
          out.emplace_back(it->begin, it->end);
        prev_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  return out;
}

Ranges char_matches(std::string_view text, const std::function<bool(char32_t)>& pred) {
  Ranges out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    char32_t c = unicode::next_code_point(text, i);
    if (pred(c)) out.emplace_back(start, i);
  }
  return out;
}

void emit_ranges(const Piece& piece, const Ranges& ranges, std::vector<Piece>& out) {
  for (auto [b, e] : ranges) {
    if (b == e) continue;
    Piece p;
    p.text.assign(piece.text, b, e - b);
    p.at_start = piece.at_start && b == 0;
    out.push_back(std::move(p));
  }
}

}  // namespace llmstudio::tokenizer
