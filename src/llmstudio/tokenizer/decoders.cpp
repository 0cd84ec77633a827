// Decoder implementations and their JSON factory (see decoders.h).
#include "llmstudio/tokenizer/decoders.h"

#include "llmstudio/tokenizer/json_util.h"
#include "llmstudio/tokenizer/regex.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::tokenizer {
namespace {

using json_util::json;

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

// Byte-level chars back to bytes (tokens with other chars contribute their UTF-8 as is), then lossy UTF-8.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      std::size_t start = bytes.size();
      bool all = true;
      std::size_t i = 0;
      while (i < t.size()) {
        int b = unicode::char_to_byte(unicode::next_code_point(t, i));
        if (b < 0) {
          all = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!all) {
        bytes.resize(start);
        bytes += t;
      }
    }
    tokens.assign(1, unicode::repair_utf8(bytes));
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool strip_first) : replacement_(replacement), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      const std::string& t = tokens[k];
      std::string out;
      out.reserve(t.size());
      std::size_t i = 0;
      while (i < t.size()) {
        std::size_t b = i;
        char32_t c = unicode::next_code_point(t, i);
        if (c == replacement_) {
          if (!(k == 0 && strip_first_)) out.push_back(' ');  // tokenizers drops every one of the first token
        } else {
          out.append(t, b, i - b);
        }
      }
      tokens[k] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool strip_first_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::pair<std::size_t, std::size_t>> matches;
    for (auto& t : tokens) {
      pattern_.find_all(t, matches);
      if (matches.empty()) continue;
      std::string out;
      std::size_t prev = 0;
      for (auto [b, e] : matches) {
        out.append(t, prev, b - prev);
        out += content_;
        prev = e;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  Regex pattern_;
  std::string content_;
};

// "<0xAB>" -> 0xAB (Rust u8::from_str_radix on the two chars, which also accepts "+A").
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (t[3] == '+') return hex(t[4]);
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (unicode::is_valid_utf8(pending))
        out.push_back(pending);
      else
        for (std::size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");  // one U+FFFD per byte
      pending.clear();
    };
    for (auto& t : tokens) {
      int b = byte_token(t);
      if (b >= 0) {
        pending.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, std::size_t start, std::size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<std::pair<std::size_t, char32_t>> chars;  // (byte offset, char)
      std::size_t i = 0;
      while (i < t.size()) {
        std::size_t b = i;
        chars.emplace_back(b, unicode::next_code_point(t, i));
      }
      std::size_t start_cut = 0;
      for (std::size_t k = 0; k < start_ && k < chars.size() && chars[k].second == content_; ++k) start_cut = k + 1;
      std::size_t stop_cut = chars.size();
      for (std::size_t k = 0; k < stop_ && k < chars.size(); ++k) {
        std::size_t idx = chars.size() - k - 1;
        if (chars[idx].second != content_) break;
        stop_cut = idx;
      }
      if (stop_cut <= start_cut) {
        t.clear();
        continue;
      }
      std::size_t b = start_cut < chars.size() ? chars[start_cut].first : t.size();
      std::size_t e = stop_cut < chars.size() ? chars[stop_cut].first : t.size();
      t = t.substr(b, e - b);
    }
  }

 private:
  char32_t content_;
  std::size_t start_, stop_;
};

// BPEDecoder: the end-of-word suffix becomes a space (nothing on the last token).
class BpeSuffixDecoder : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      std::string& t = tokens[k];
      std::string rep = k + 1 == tokens.size() ? "" : " ";
      std::string out;
      std::size_t prev = 0, pos;
      while (!suffix_.empty() && (pos = t.find(suffix_, prev)) != std::string::npos) {
        out.append(t, prev, pos - prev);
        out += rep;
        prev = pos + suffix_.size();
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string suffix_;
};

char32_t one_char(const std::string& s, const std::string& where, const char* key) {
  LLMS_CHECK(!s.empty() && unicode::is_valid_utf8(s), where, ": \"", key, "\" must be one character, found \"", s, "\"");
  std::size_t i = 0;
  char32_t c = unicode::next_code_point(s, i);
  LLMS_CHECK(i == s.size(), where, ": \"", key, "\" must be one character, found \"", s, "\"");
  return c;
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& j, const std::string& file) {
  const std::string where0 = file + ": decoder";
  std::string type = json_util::component_type(j, where0);
  const std::string where = where0 + " " + type;
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& p : json_util::get_array(j, "decoders", where)) parts.push_back(make_decoder(p, file));
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    char32_t rep = one_char(json_util::get_string_or(j, "replacement", "\u2581", where), where, "replacement");
    bool strip_first;
    auto it = j.find("prepend_scheme");
    if (it != j.end() && !it->is_null())
      strip_first = json_util::get_string(j, "prepend_scheme", where) != "never";
    else
      strip_first = json_util::get_bool_or(j, "add_prefix_space", true, where);
    return std::make_unique<MetaspaceDecoder>(rep, strip_first);
  }
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(pattern_from_json(json_util::require(j, "pattern", where), where),
                                            json_util::get_string(j, "content", where));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto start = json_util::get_int_or(j, "start", 0, where), stop = json_util::get_int_or(j, "stop", 0, where);
    LLMS_CHECK(start >= 0 && stop >= 0, where, ": start/stop must be >= 0");
    return std::make_unique<StripDecoder>(one_char(json_util::get_string(j, "content", where), where, "content"),
                                          static_cast<std::size_t>(start), static_cast<std::size_t>(stop));
  }
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(json_util::get_string_or(j, "suffix", "</w>", where));
  fail(file, ": unsupported decoder type \"", type,
       "\" (supported: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder, Sequence)");
}

}  // namespace llmstudio::tokenizer
