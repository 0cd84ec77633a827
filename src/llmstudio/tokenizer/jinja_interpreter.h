// A compiled Jinja template and its tree-walking renderer, with jinja2's runtime semantics: scoping (a for-loop
// iteration and a macro call get their own scope; if-blocks do not), the `loop` variable, namespace assignment,
// macros and call blocks, break/continue, Python operators, and default Undefined (renders as "", is falsy,
// fails on attribute access or arithmetic). Every error is an llmstudio::Error naming the template line:column.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llmstudio/tokenizer/jinja_lexer.h"
#include "llmstudio/tokenizer/jinja_parser.h"
#include "llmstudio/tokenizer/jinja_value.h"

namespace llmstudio::tokenizer::jinja {

class Template {
 public:
  // Lexes and parses `source`; throws llmstudio::Error with line:column on syntax errors.
  explicit Template(std::string_view source, const LexerOptions& opts = {});
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with the given top-level variables; the chat-template globals (range, dict, namespace,
  // raise_exception, strftime_now, joiner) are visible underneath them.
  std::string render(const Dict& context) const;

 private:
  std::unique_ptr<SourceInfo> src_;
  std::vector<StmtPtr> body_;
};

}  // namespace llmstudio::tokenizer::jinja
