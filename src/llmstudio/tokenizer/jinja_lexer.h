// Jinja lexer: splits template source into data and tag tokens exactly like jinja2's Lexer with the options
// transformers uses (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False): newline normalisation,
// `{%- -%}` / `{{- -}}` / `{#- -#}` whitespace control, `+` opt-outs, `{% raw %}` blocks, comments, and the
// expression tokens inside tags (names, string/int/float literals, operators). Also owns error positions:
// SourceInfo turns an offset into "line L, column C" with a caret snippet.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmstudio::tokenizer::jinja {

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

enum class TokenType {
  Data,        // template text between tags
  BlockBegin,  // {%
  BlockEnd,    // %}
  VarBegin,    // {{
  VarEnd,      // }}
  Name,
  String,
  Integer,
  Float,
  Operator,
  Eof,
};

struct Token {
  TokenType type;
  std::string value;  // decoded string literal / operator text / name / data
  std::size_t offset = 0;  // position in the normalised source
  int64_t int_value = 0;
  double float_value = 0.0;
};

// The normalised template source, kept for error messages.
class SourceInfo {
 public:
  explicit SourceInfo(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }
  // 1-based line and column (in code points) of a byte offset.
  std::pair<int, int> line_col(std::size_t offset) const;
  // "<message> (template line L, column C)\n  <line text>\n  <caret>"
  std::string describe(std::size_t offset, const std::string& message) const;
  [[noreturn]] void fail(std::size_t offset, const std::string& message) const;

 private:
  std::string source_;
};

// Normalises newlines (\r\n and \r -> \n) and drops one trailing newline unless keep_trailing_newline.
std::string normalize_source(std::string_view source, const LexerOptions& opts);

// Tokenises normalised source; throws llmstudio::Error (via SourceInfo::fail) on lexical errors.
std::vector<Token> tokenize(const SourceInfo& src, const LexerOptions& opts);

}  // namespace llmstudio::tokenizer::jinja
