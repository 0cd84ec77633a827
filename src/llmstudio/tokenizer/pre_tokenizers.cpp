// Pre-tokenizer implementations and their JSON factory (see pre_tokenizers.h).
#include "llmstudio/tokenizer/pre_tokenizers.h"

#include "llmstudio/tokenizer/json_util.h"
#include "llmstudio/tokenizer/regex.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::tokenizer {

void PreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (auto& p : pieces) {
    if (p.token_id >= 0)
      out.push_back(std::move(p));
    else if (!p.text.empty())
      split(p, out);
  }
  pieces = std::move(out);
}

namespace {

using json_util::json;
using MatchList = std::vector<std::pair<std::size_t, std::size_t>>;

// The GPT-2 pre-tokenization regex used by ByteLevel(use_regex=true).
const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    std::vector<Piece> cur{piece};
    for (const auto& p : parts_) p->pre_tokenize(cur);
    for (auto& c : cur) out.push_back(std::move(c));
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, where);
  }
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    std::string text = piece.text;
    if (add_prefix_space_ && text[0] != ' ') text.insert(0, 1, ' ');
    if (!regex_) {
      out.push_back(Piece{unicode::byte_level_encode(text), -1, piece.at_start});
      return;
    }
    thread_local MatchList matches;
    regex_->find_all(text, matches);
    Ranges ranges = split_ranges(text.size(), matches, SplitBehavior::Isolated, false);
    for (auto [b, e] : ranges) {
      if (b == e) continue;
      out.push_back(Piece{unicode::byte_level_encode(std::string_view(text).substr(b, e - b)), -1,
                          piece.at_start && b == 0});
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    thread_local MatchList matches;
    pattern_.find_all(piece.text, matches);
    emit_ranges(piece, split_ranges(piece.text.size(), matches, behavior_, invert_), out);
  }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class PrependScheme { Always, First, Never };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), rep_(unicode::to_utf8(replacement)), scheme_(scheme), split_(split) {}
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    Piece p;
    p.at_start = piece.at_start;
    p.text.reserve(piece.text.size() + 8);
    for (char c : piece.text) {
      if (c == ' ')
        p.text += rep_;
      else
        p.text.push_back(c);
    }
    bool starts = p.text.compare(0, rep_.size(), rep_) == 0;
    if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && piece.at_start)))
      p.text.insert(0, rep_);
    if (!split_) {
      out.push_back(std::move(p));
      return;
    }
    char32_t r = replacement_;
    Ranges matches = char_matches(p.text, [r](char32_t c) { return c == r; });
    emit_ranges(p, split_ranges(p.text.size(), matches, SplitBehavior::MergedWithNext, false), out);
  }

 private:
  char32_t replacement_;
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

// Splits on characters satisfying a predicate (Digits, WhitespaceSplit, Punctuation, CharDelimiterSplit).
class CharPredicatePreTokenizer : public PreTokenizer {
 public:
  CharPredicatePreTokenizer(std::function<bool(char32_t)> pred, SplitBehavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    emit_ranges(piece, split_ranges(piece.text.size(), char_matches(piece.text, pred_), behavior_, false), out);
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

char32_t single_char(const std::string& s, const std::string& where, const char* key) {
  LLMS_CHECK(!s.empty() && unicode::is_valid_utf8(s), where, ": field \"", key, "\" must be one character, found \"",
             s, "\"");
  std::size_t i = 0;
  char32_t c = unicode::next_code_point(s, i);
  LLMS_CHECK(i == s.size(), where, ": field \"", key, "\" must be one character, found \"", s, "\"");
  return c;
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& file) {
  const std::string where0 = file + ": pre_tokenizer";
  std::string type = json_util::component_type(j, where0);
  const std::string where = where0 + " " + type;
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& p : json_util::get_array(j, "pretokenizers", where)) parts.push_back(make_pre_tokenizer(p, file));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(json_util::get_bool_or(j, "add_prefix_space", true, where),
                                                   json_util::get_bool_or(j, "use_regex", true, where), where);
  if (type == "Split")
    return std::make_unique<SplitPreTokenizer>(
        pattern_from_json(json_util::require(j, "pattern", where), where),
        parse_split_behavior(json_util::get_string(j, "behavior", where), where),
        json_util::get_bool_or(j, "invert", false, where));
  if (type == "Metaspace") {
    char32_t rep = single_char(json_util::get_string_or(j, "replacement", "\u2581", where), where, "replacement");
    PrependScheme scheme = PrependScheme::Always;
    auto it = j.find("prepend_scheme");
    if (it != j.end() && !it->is_null()) {
      std::string s = json_util::get_string(j, "prepend_scheme", where);
      if (s == "always")
        scheme = PrependScheme::Always;
      else if (s == "first")
        scheme = PrependScheme::First;
      else if (s == "never")
        scheme = PrependScheme::Never;
      else
        fail(where, ": unknown prepend_scheme \"", s, "\" (expected always, first or never)");
    } else if (!json_util::get_bool_or(j, "add_prefix_space", true, where)) {
      scheme = PrependScheme::Never;  // legacy files: add_prefix_space instead of prepend_scheme
    }
    return std::make_unique<MetaspacePreTokenizer>(rep, scheme, json_util::get_bool_or(j, "split", true, where));
  }
  if (type == "Digits") {
    bool individual = json_util::get_bool_or(j, "individual_digits", false, where);
    return std::make_unique<CharPredicatePreTokenizer>(
        unicode::is_numeric, individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "Whitespace")
    return std::make_unique<SplitPreTokenizer>(Regex(R"(\w+|[^\w\s]+)", where), SplitBehavior::Removed, true);
  if (type == "WhitespaceSplit")
    return std::make_unique<CharPredicatePreTokenizer>(unicode::is_whitespace, SplitBehavior::Removed);
  if (type == "Punctuation")
    return std::make_unique<CharPredicatePreTokenizer>(
        unicode::is_punctuation, parse_split_behavior(json_util::get_string_or(j, "behavior", "Isolated", where), where));
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    parts.push_back(std::make_unique<CharPredicatePreTokenizer>(unicode::is_whitespace, SplitBehavior::Removed));
    parts.push_back(std::make_unique<CharPredicatePreTokenizer>(unicode::is_punctuation, SplitBehavior::Isolated));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "CharDelimiterSplit") {
    char32_t d = single_char(json_util::get_string(j, "delimiter", where), where, "delimiter");
    return std::make_unique<CharPredicatePreTokenizer>([d](char32_t c) { return c == d; }, SplitBehavior::Removed);
  }
  fail(file, ": unsupported pre_tokenizer type \"", type,
       "\" (supported: ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, "
       "BertPreTokenizer, CharDelimiterSplit, Sequence)");
}

}  // namespace llmstudio::tokenizer
