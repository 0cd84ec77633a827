// Added-token matching (see added_tokens.h).
#include "llmstudio/tokenizer/added_tokens.h"

#include <algorithm>

#include "llmstudio/tokenizer/normalizers.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::tokenizer {

void AddedVocabulary::Matcher::add(const std::string& pattern, int32_t index) {
  if (pattern.empty()) return;
  if (terminal.empty()) terminal.push_back(-1);  // root
  int32_t node = 0;
  for (char ch : pattern) {
    uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(ch);
    auto it = edges.find(key);
    if (it == edges.end()) {
      int32_t next = static_cast<int32_t>(terminal.size());
      terminal.push_back(-1);
      it = edges.emplace(key, next).first;
    }
    node = it->second;
  }
  first_byte[static_cast<unsigned char>(pattern[0])] = true;
  if (terminal[node] < 0) {
    terminal[node] = static_cast<int32_t>(patterns.size());
  } else {
    token_index[terminal[node]] = index;  // same pattern twice: the later token wins
    return;
  }
  patterns.push_back(pattern);
  token_index.push_back(index);
}

std::pair<std::size_t, int32_t> AddedVocabulary::Matcher::longest_at(std::string_view text, std::size_t pos) const {
  std::pair<std::size_t, int32_t> best{0, -1};
  int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    auto it = edges.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
    if (it == edges.end()) break;
    node = it->second;
    if (terminal[node] >= 0) best = {i + 1 - pos, terminal[node]};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (std::size_t k = 0; k < tokens_.size(); ++k) {
    const AddedToken& t = tokens_[k];
    content_to_id_[t.content] = t.id;
    id_to_content_[t.id] = t.content;
    if (t.special) special_.insert(t.content);
  }
  for (std::size_t k = 0; k < tokens_.size(); ++k) {
    const AddedToken& t = tokens_[k];
    if (t.normalized) {
      std::string pattern = t.content;
      if (normalizer) normalizer->normalize(pattern);
      normalized_.add(pattern, static_cast<int32_t>(k));
      id_to_content_[t.id] = pattern;  // tokenizers' id_to_token/decode give the normalized content
    } else {
      raw_.add(t.content, static_cast<int32_t>(k));
    }
  }
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = content_to_id_.find(std::string(content));
  if (it == content_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* AddedVocabulary::id_to_token(int32_t id) const {
  auto it = id_to_content_.find(id);
  return it == id_to_content_.end() ? nullptr : &it->second;
}

void AddedVocabulary::split(std::vector<Piece>& pieces, const Matcher& m) const {
  if (m.patterns.empty()) {
    std::erase_if(pieces, [](const Piece& p) { return p.token_id < 0 && p.text.empty(); });
    return;
  }
  std::vector<Piece> out;
  out.reserve(pieces.size() + 4);
  for (auto& p : pieces) {
    if (p.token_id >= 0)
      out.push_back(std::move(p));
    else if (!p.text.empty())
      split_one(p, m, out);
  }
  pieces = std::move(out);
}

namespace {
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t b = s.size() - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return unicode::is_word_char(unicode::next_code_point(s, b));
}
bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = 0;
  return unicode::is_word_char(unicode::next_code_point(s, i));
}
// Start of the whitespace run that ends s.
std::size_t trailing_space_start(std::string_view s) {
  std::size_t e = s.size();
  while (e > 0) {
    std::size_t b = e - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    std::size_t k = b;
    if (!unicode::is_whitespace(unicode::next_code_point(s, k))) break;
    e = b;
  }
  return e;
}
// Length of the whitespace run that starts s.
std::size_t leading_space_len(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t b = i;
    if (!unicode::is_whitespace(unicode::next_code_point(s, i))) return b;
  }
  return i;
}
}  // namespace

void AddedVocabulary::split_one(const Piece& piece, const Matcher& m, std::vector<Piece>& out) const {
  std::string_view text = piece.text;
  auto emit_text = [&](std::size_t b, std::size_t e) {
    if (b >= e) return;
    out.push_back(Piece{std::string(text.substr(b, e - b)), -1, piece.at_start && b == 0});
  };
  std::size_t start_offset = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    // Leftmost match, longest at that position.
    std::size_t s = pos;
    std::pair<std::size_t, int32_t> hit{0, -1};
    for (; s < text.size(); ++s) {
      if (!m.first_byte[static_cast<unsigned char>(text[s])]) continue;
      hit = m.longest_at(text, s);
      if (hit.second >= 0) break;
    }
    if (hit.second < 0) break;
    std::size_t e = s + hit.first;
    pos = e;
    const AddedToken& tok = tokens_[m.token_index[hit.second]];
    if (tok.single_word) {
      bool start_space = s == 0 || !ends_with_word(text.substr(0, s));
      bool stop_space = e == text.size() || !starts_with_word(text.substr(e));
      if (!start_space || !stop_space) continue;
    }
    std::size_t start = s, stop = e;
    if (tok.lstrip) start = std::max(trailing_space_start(text.substr(0, s)), start_offset);
    if (tok.rstrip) stop += leading_space_len(text.substr(e));
    emit_text(start_offset, start);
    out.push_back(Piece{std::string(text.substr(start, stop - start)), tok.id, piece.at_start && start == 0});
    start_offset = stop;
  }
  emit_text(start_offset, text.size());
}

}  // namespace llmstudio::tokenizer
