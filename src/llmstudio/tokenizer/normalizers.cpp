// Normalizer implementations and their JSON factory (see normalizers.h).
#include "llmstudio/tokenizer/normalizers.h"

#include <vector>

#include "llmstudio/tokenizer/json_util.h"
#include "llmstudio/tokenizer/regex.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::tokenizer {
namespace {

using json_util::json;

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& p : parts_) p->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);  // like tokenizers: nothing is prepended to an empty string
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    thread_local std::vector<std::pair<std::size_t, std::size_t>> matches;
    pattern_.find_all(text, matches);
    if (matches.empty()) return;
    std::string out;
    out.reserve(text.size() + matches.size() * content_.size());
    std::size_t prev = 0;
    for (auto [b, e] : matches) {
      out.append(text, prev, b - prev);
      out += content_;
      prev = e;
    }
    out.append(text, prev, std::string::npos);
    text = std::move(out);
  }

 private:
  Regex pattern_;
  std::string content_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override { text = unicode::normalize(text, form_); }

 private:
  unicode::NormalForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = unicode::lowercase(text); }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    std::size_t begin = 0, end = text.size();
    if (left_) {
      std::size_t i = 0;
      while (i < text.size()) {
        std::size_t start = i;
        if (!unicode::is_whitespace(unicode::next_code_point(text, i))) {
          i = start;
          break;
        }
      }
      begin = i;
    }
    if (right_) {
      // Walk back over whitespace characters.
      std::size_t e = text.size();
      while (e > begin) {
        std::size_t s = e - 1;
        while (s > begin && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
        std::size_t k = s;
        if (!unicode::is_whitespace(unicode::next_code_point(text, k))) break;
        e = s;
      }
      end = e;
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
      std::size_t start = i;
      char32_t c = unicode::next_code_point(text, i);
      if (!unicode::is_mark_nonspacing(c)) out.append(text, start, i - start);
    }
    text = std::move(out);
  }
};

class ByteLevelNormalizer : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = unicode::byte_level_encode(text); }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& file) {
  const std::string where0 = file + ": normalizer";
  std::string type = json_util::component_type(j, where0);
  const std::string where = where0 + " " + type;
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& p : json_util::get_array(j, "normalizers", where)) parts.push_back(make_normalizer(p, file));
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(json_util::get_string(j, "prepend", where));
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(pattern_from_json(json_util::require(j, "pattern", where), where),
                                               json_util::get_string(j, "content", where));
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(json_util::get_bool_or(j, "strip_left", true, where),
                                             json_util::get_bool_or(j, "strip_right", true, where));
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  fail(file, ": unsupported normalizer type \"", type,
       "\" (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, ByteLevel)");
}

}  // namespace llmstudio::tokenizer
