// Jinja lexer with jinja2's whitespace rules (see jinja_lexer.h).
#include "llmstudio/tokenizer/jinja_lexer.h"

#include <array>
#include <cerrno>
#include <cstdlib>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/jinja_text.h"

namespace llmstudio::tokenizer::jinja {

std::pair<int, int> SourceInfo::line_col(std::size_t offset) const {
  if (offset > source_.size()) offset = source_.size();
  int line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (source_[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  int col = static_cast<int>(text::length(std::string_view(source_).substr(line_start, offset - line_start))) + 1;
  return {line, col};
}

std::string SourceInfo::describe(std::size_t offset, const std::string& message) const {
  if (offset > source_.size()) offset = source_.size();
  auto [line, col] = line_col(offset);
  std::size_t b = source_.rfind('\n', offset == 0 ? 0 : offset - 1);
  b = (b == std::string::npos || (offset > 0 && b >= offset)) ? 0 : b + 1;
  if (offset > 0 && source_[offset - 1] == '\n') b = offset;
  std::size_t e = source_.find('\n', offset);
  if (e == std::string::npos) e = source_.size();
  std::string line_text = source_.substr(b, e - b);
  std::string caret(static_cast<std::size_t>(col - 1), ' ');
  // Keep tabs in the caret line so it lines up under the offending character.
  std::u32string cps = text::decode(line_text);
  for (std::size_t i = 0; i < caret.size() && i < cps.size(); ++i)
    if (cps[i] == '\t') caret[i] = '\t';
  return message + " (template line " + std::to_string(line) + ", column " + std::to_string(col) + ")\n  " +
         line_text + "\n  " + caret + "^";
}

void SourceInfo::fail(std::size_t offset, const std::string& message) const {
  throw Error("chat template: " + describe(offset, message));
}

std::string normalize_source(std::string_view source, const LexerOptions& opts) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!opts.keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

namespace {

bool starts_with(const std::string& s, std::size_t pos, std::string_view p) {
  return s.compare(pos, p.size(), p) == 0;
}

// Skips Python `\s*` (Unicode whitespace) from pos.
std::size_t skip_ws(const std::string& s, std::size_t pos) {
  while (pos < s.size()) {
    auto b = static_cast<unsigned char>(s[pos]);
    if (b < 0x80) {
      if (!text::is_space(b)) break;
      ++pos;
      continue;
    }
    std::size_t n = (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : 4;
    std::u32string cp = text::decode(std::string_view(s).substr(pos, n));
    if (cp.size() != 1 || !text::is_space(cp[0])) break;
    pos += n;
  }
  return pos;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// `\d+(_\d+)*` starting at pos; returns end or pos when no digit.
std::size_t scan_digits(const std::string& s, std::size_t pos) {
  if (pos >= s.size() || !is_digit(s[pos])) return pos;
  std::size_t p = pos;
  while (true) {
    while (p < s.size() && is_digit(s[p])) ++p;
    if (p + 1 < s.size() && s[p] == '_' && is_digit(s[p + 1])) {
      ++p;
      continue;
    }
    return p;
  }
}

std::string without_underscores(std::string_view v) {
  std::string out;
  for (char c : v)
    if (c != '_') out.push_back(c);
  return out;
}

constexpr std::array<std::string_view, 26> kOperators = {
    "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
    "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};

class Lexer {
 public:
  Lexer(const SourceInfo& src, const LexerOptions& opts) : src_(src), s_(src.source()), opts_(opts) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) root();
    out_.push_back(Token{TokenType::Eof, "", s_.size()});
    return out_;
  }

 private:
  // Applies `-` / lstrip_blocks to the text before a tag (jinja2's OptionalLStrip).
  std::string strip_text(std::string text, char sign, bool is_variable) const {
    if (sign == '-') return text::strip(text, std::nullopt, false, true);
    if (sign != '+' && opts_.lstrip_blocks && !is_variable) {
      std::size_t nl = text.rfind('\n');
      std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && l_pos < text.size() && text::is_all_space(text.substr(l_pos)))
        text.erase(l_pos);
    }
    return text;
  }

  void emit_data(std::string text, std::size_t offset) {
    if (!text.empty()) out_.push_back(Token{TokenType::Data, std::move(text), offset});
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})` at pos; returns end offset or 0.
  std::size_t match_raw_begin(std::size_t pos) const {
    std::size_t p = pos + 2;
    if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) ++p;
    p = skip_ws(s_, p);
    if (!starts_with(s_, p, "raw")) return 0;
    p = skip_ws(s_, p + 3);
    if (starts_with(s_, p, "-%}")) return skip_ws(s_, p + 3);
    if (starts_with(s_, p, "%}")) return p + 2;
    return 0;
  }

  void root() {
    std::size_t t = pos_;
    char kind = 0;
    while (true) {
      t = s_.find('{', t);
      if (t == std::string::npos || t + 1 >= s_.size()) break;
      char c = s_[t + 1];
      if (c == '{' || c == '%' || c == '#') {
        kind = c;
        break;
      }
      ++t;
    }
    if (kind == 0) {
      emit_data(s_.substr(pos_), pos_);
      pos_ = s_.size();
      return;
    }
    char sign = (t + 2 < s_.size() && (s_[t + 2] == '-' || s_[t + 2] == '+')) ? s_[t + 2] : 0;
    emit_data(strip_text(s_.substr(pos_, t - pos_), sign, kind == '{'), pos_);
    if (kind == '%') {
      if (std::size_t end = match_raw_begin(t)) return raw(t, end);
    }
    std::size_t body = t + 2 + (sign ? 1 : 0);
    if (kind == '#') return comment(t, body);
    out_.push_back(Token{kind == '%' ? TokenType::BlockBegin : TokenType::VarBegin, kind == '%' ? "{%" : "{{", t});
    pos_ = body;
    inside_tag(kind == '%', t);
  }

  void raw(std::size_t begin, std::size_t body) {
    std::size_t p = body;
    while (true) {
      std::size_t t = s_.find("{%", p);
      if (t == std::string::npos) src_.fail(begin, "Missing end of raw directive");
      std::size_t q = t + 2;
      char sign = (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) ? s_[q] : 0;
      if (sign) ++q;
      q = skip_ws(s_, q);
      if (!starts_with(s_, q, "endraw")) {
        p = t + 2;
        continue;
      }
      q = skip_ws(s_, q + 6);
      std::size_t end;
      if (starts_with(s_, q, "+%}")) {
        end = q + 3;
      } else if (starts_with(s_, q, "-%}")) {
        end = skip_ws(s_, q + 3);
      } else if (starts_with(s_, q, "%}")) {
        end = q + 2;
        if (opts_.trim_blocks && end < s_.size() && s_[end] == '\n') ++end;
      } else {
        p = t + 2;
        continue;
      }
      line_starting_ = s_[body - 1] == '\n';
      emit_data(strip_text(s_.substr(body, t - body), sign, false), body);
      pos_ = end;
      line_starting_ = s_[end - 1] == '\n';
      return;
    }
  }

  void comment(std::size_t begin, std::size_t body) {
    std::size_t q = s_.find("#}", body);
    if (q == std::string::npos) src_.fail(begin, "Missing end of comment tag");
    std::size_t end;
    if (q > body && s_[q - 1] == '+') {
      end = q + 2;
    } else if (q > body && s_[q - 1] == '-') {
      end = skip_ws(s_, q + 2);
    } else {
      end = q + 2;
      if (opts_.trim_blocks && end < s_.size() && s_[end] == '\n') ++end;
    }
    pos_ = end;
    line_starting_ = s_[end - 1] == '\n';
  }

  void inside_tag(bool block, std::size_t begin) {
    std::vector<char> balance;
    while (true) {
      if (pos_ >= s_.size())
        src_.fail(begin, std::string("unexpected end of template, the tag opened here is never closed with '") +
                             (block ? "%}" : "}}") + "'");
      if (balance.empty()) {
        std::size_t end = 0;
        if (block) {
          if (starts_with(s_, pos_, "+%}")) {
            end = pos_ + 3;
          } else if (starts_with(s_, pos_, "-%}")) {
            end = skip_ws(s_, pos_ + 3);
          } else if (starts_with(s_, pos_, "%}")) {
            end = pos_ + 2;
            if (opts_.trim_blocks && end < s_.size() && s_[end] == '\n') ++end;
          }
        } else {
          if (starts_with(s_, pos_, "-}}"))
            end = skip_ws(s_, pos_ + 3);
          else if (starts_with(s_, pos_, "}}"))
            end = pos_ + 2;
        }
        if (end) {
          out_.push_back(Token{block ? TokenType::BlockEnd : TokenType::VarEnd, block ? "%}" : "}}", pos_});
          pos_ = end;
          line_starting_ = s_[end - 1] == '\n';
          return;
        }
      }
      std::size_t ws = skip_ws(s_, pos_);
      if (ws != pos_) {
        pos_ = ws;
        continue;
      }
      char c = s_[pos_];
      if (is_digit(c)) {
        number();
        continue;
      }
      if (is_name_start(c)) {
        std::size_t e = pos_;
        while (e < s_.size() && is_name_char(s_[e])) ++e;
        out_.push_back(Token{TokenType::Name, s_.substr(pos_, e - pos_), pos_});
        pos_ = e;
        continue;
      }
      if (c == '\'' || c == '"') {
        string_literal(c);
        continue;
      }
      bool matched = false;
      for (std::string_view op : kOperators) {
        if (!starts_with(s_, pos_, op)) continue;
        if (op == "{" || op == "(" || op == "[") {
          balance.push_back(op == "{" ? '}' : op == "(" ? ')' : ']');
        } else if (op == "}" || op == ")" || op == "]") {
          if (balance.empty()) src_.fail(pos_, "unexpected '" + std::string(op) + "'");
          if (balance.back() != op[0])
            src_.fail(pos_, "unexpected '" + std::string(op) + "', expected '" + std::string(1, balance.back()) + "'");
          balance.pop_back();
        }
        out_.push_back(Token{TokenType::Operator, std::string(op), pos_});
        pos_ += op.size();
        matched = true;
        break;
      }
      if (!matched) src_.fail(pos_, "unexpected char " + text::py_repr(std::string(1, c)));
    }
  }

  void number() {
    std::size_t start = pos_;
    // Float: (?<!\.)\d+(_\d+)*((\.\d+(_\d+)*)?e[+-]?\d+(_\d+)* | \.\d+(_\d+)*)
    if (start == 0 || s_[start - 1] != '.') {
      std::size_t p = scan_digits(s_, start);
      bool frac = false, exp = false;
      if (p + 1 < s_.size() && s_[p] == '.' && is_digit(s_[p + 1])) {
        p = scan_digits(s_, p + 1);
        frac = true;
      }
      if (p < s_.size() && (s_[p] == 'e' || s_[p] == 'E')) {
        std::size_t q = p + 1;
        if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
        std::size_t e = scan_digits(s_, q);
        if (e != q) {
          p = e;
          exp = true;
        }
      }
      if (frac || exp) {
        Token tok{TokenType::Float, s_.substr(start, p - start), start};
        tok.float_value = std::strtod(without_underscores(tok.value).c_str(), nullptr);
        out_.push_back(tok);
        pos_ = p;
        return;
      }
    }
    std::size_t p = start;
    int base = 10;
    if (s_[p] == '0' && p + 1 < s_.size() && std::string_view("bBoOxX").find(s_[p + 1]) != std::string_view::npos) {
      char b = static_cast<char>(s_[p + 1] | 0x20);
      base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
      std::size_t q = p + 2;
      auto ok = [&](char ch) {
        if (base == 2) return ch == '0' || ch == '1';
        if (base == 8) return ch >= '0' && ch <= '7';
        return is_digit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
      };
      while (q < s_.size() && (ok(s_[q]) || (s_[q] == '_' && q + 1 < s_.size() && ok(s_[q + 1])))) ++q;
      if (q > p + 2) {
        p = q;
      } else {
        base = 10;
        p = start + 1;
      }
    } else if (s_[p] == '0') {
      ++p;
      while (p < s_.size() && (s_[p] == '0' || (s_[p] == '_' && p + 1 < s_.size() && s_[p + 1] == '0'))) ++p;
    } else {
      p = scan_digits(s_, p);
    }
    Token tok{TokenType::Integer, s_.substr(start, p - start), start};
    std::string digits = without_underscores(tok.value);
    if (base != 10) digits = digits.substr(2);
    errno = 0;
    tok.int_value = std::strtoll(digits.c_str(), nullptr, base);
    if (errno == ERANGE) src_.fail(start, "integer literal too large");
    out_.push_back(tok);
    pos_ = p;
  }

  void string_literal(char quote) {
    std::size_t start = pos_;
    std::size_t p = pos_ + 1;
    while (p < s_.size() && s_[p] != quote) p += (s_[p] == '\\' && p + 1 < s_.size()) ? 2 : 1;
    if (p >= s_.size()) src_.fail(start, "unexpected char " + text::py_repr(std::string(1, quote)) + " (unterminated string)");
    std::string raw = s_.substr(start + 1, p - start - 1);
    out_.push_back(Token{TokenType::String, text::unicode_unescape(raw), start});
    pos_ = p + 1;
  }

  const SourceInfo& src_;
  const std::string& s_;
  LexerOptions opts_;
  std::size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> tokenize(const SourceInfo& src, const LexerOptions& opts) { return Lexer(src, opts).run(); }

}  // namespace llmstudio::tokenizer::jinja
