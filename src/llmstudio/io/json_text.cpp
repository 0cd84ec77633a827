// Depth-limited JSON parsing and bounded previews (see json_text.h).
#include "llmstudio/io/json_text.h"

#include <algorithm>

#include "llmstudio/core/error.h"

namespace llmstudio::io {
namespace {

constexpr std::size_t kMaxParserDetail = 240;  // characters of the parser's own message kept in ours

// Cuts `s` to at most n bytes without splitting a UTF-8 sequence.
void utf8_cut(std::string& s, std::size_t n) {
  if (s.size() <= n) return;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
}

// nlohmann's what() without its "[json.exception.parse_error.101] " prefix, bounded (its "last read" part can
// quote a whole string token).
std::string parser_detail(const std::exception& e) {
  std::string what = e.what();
  if (what.rfind("[json.exception.", 0) == 0) {
    auto close = what.find("] ");
    if (close != std::string::npos) what.erase(0, close + 2);
  }
  if (what.size() > kMaxParserDetail) {
    utf8_cut(what, kMaxParserDetail);
    what += "...";
  }
  return what;
}

void check_depth(std::string_view text, const std::string& source, int max_depth) {
  if (auto at = find_json_depth_excess(text, max_depth))
    fail(source, ": JSON nested deeper than the limit of ", max_depth, " levels (at byte offset ", *at, ")",
         "\n  hint: arrays and objects may be nested at most ", max_depth, " deep");
}

[[noreturn]] void fail_syntax(const std::string& source, std::size_t byte, const std::exception& e) {
  fail(source, ": not valid JSON (byte offset ", byte, "): ", parser_detail(e));
}

template <typename J>
J parse_with_limit(std::string_view text, const std::string& source, int max_depth) {
  check_depth(text, source, max_depth);
  try {
    return J::parse(text.begin(), text.end());
  } catch (const typename J::parse_error& e) {
    fail_syntax(source, e.byte, e);
  } catch (const typename J::exception& e) {  // e.g. out_of_range for a number like 1e999
    fail(source, ": not valid JSON: ", parser_detail(e));
  }
}

// Passes every event on to `inner`; a syntax error becomes our Error naming the source.
class SaxForwarder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  SaxForwarder(nlohmann::json_sax<nlohmann::json>& inner, const std::string& source)
      : inner_(inner), source_(source) {}
  bool null() override { return inner_.null(); }
  bool boolean(bool v) override { return inner_.boolean(v); }
  bool number_integer(number_integer_t v) override { return inner_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) override { return inner_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) override { return inner_.number_float(v, s); }
  bool string(string_t& v) override { return inner_.string(v); }
  bool binary(binary_t& v) override { return inner_.binary(v); }
  bool start_object(std::size_t n) override { return inner_.start_object(n); }
  bool key(string_t& v) override { return inner_.key(v); }
  bool end_object() override { return inner_.end_object(); }
  bool start_array(std::size_t n) override { return inner_.start_array(n); }
  bool end_array() override { return inner_.end_array(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    fail_syntax(source_, position, e);
  }

 private:
  nlohmann::json_sax<nlohmann::json>& inner_;
  const std::string& source_;
};

// A compact serializer that stops once the output passes the budget: it descends into a nested value only
// while there is budget left, and every level adds at least one character, so the recursion is bounded by
// max_chars and not by the value's depth.
template <typename J>
class Preview {
 public:
  explicit Preview(std::size_t max_chars) : max_(max_chars) {}

  void value(const J& v) {
    if (full()) return;
    if (v.is_object()) {
      out_ += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end() && !full(); ++it) {
        if (!first) out_ += ',';
        first = false;
        string(it.key());
        out_ += ':';
        value(it.value());
      }
      if (!full()) out_ += '}';
    } else if (v.is_array()) {
      out_ += '[';
      bool first = true;
      for (auto it = v.begin(); it != v.end() && !full(); ++it) {
        if (!first) out_ += ',';
        first = false;
        value(*it);
      }
      if (!full()) out_ += ']';
    } else if (v.is_string()) {
      string(v.template get_ref<const std::string&>());
    } else {
      out_ += v.dump(-1, ' ', false, J::error_handler_t::replace);  // numbers, booleans, null
    }
  }

  std::string finish() {
    if (out_.size() > max_) {
      utf8_cut(out_, max_);
      cut_ = true;
    }
    if (cut_) out_ += "...";
    return std::move(out_);
  }

 private:
  bool full() const { return cut_ || out_.size() > max_; }

  void string(const std::string& s) {
    std::string head = s;  // only what can still show
    utf8_cut(head, max_ - std::min(max_, out_.size()));
    out_ += J(head).dump(-1, ' ', false, J::error_handler_t::replace);
    if (head.size() < s.size()) {  // cut short: no closing quote, nothing after it
      out_.pop_back();
      cut_ = true;
    }
  }

  std::size_t max_;
  std::string out_;
  bool cut_ = false;
};

template <typename J>
std::string preview_of(const J& value, std::size_t max_chars) {
  Preview<J> p(max_chars);
  p.value(value);
  return p.finish();
}

}  // namespace

std::optional<std::size_t> find_json_depth_excess(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // skips the escaped character (\" does not end the string)
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return i;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;  // unbalanced text is the parser's to report
        break;
      default:
        break;
    }
  }
  return std::nullopt;
}

nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth) {
  return parse_with_limit<nlohmann::json>(text, source, max_depth);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source, int max_depth) {
  return parse_with_limit<nlohmann::ordered_json>(text, source, max_depth);
}

void sax_parse_json(std::string_view text, const std::string& source, nlohmann::json_sax<nlohmann::json>& sax,
                    int max_depth) {
  check_depth(text, source, max_depth);
  SaxForwarder forward(sax, source);
  nlohmann::json::sax_parse(text.begin(), text.end(), &forward);
}

std::optional<nlohmann::json> try_parse_json(std::string_view text, int max_depth) {
  if (find_json_depth_excess(text, max_depth)) return std::nullopt;
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string json_preview(const nlohmann::json& value, std::size_t max_chars) {
  return preview_of(value, max_chars);
}

std::string json_preview(const nlohmann::ordered_json& value, std::size_t max_chars) {
  return preview_of(value, max_chars);
}

}  // namespace llmstudio::io
