// Jinja's built-in filters and tests (jinja2 3.1 semantics) with transformers' overrides (`tojson` is
// json.dumps(ensure_ascii=False)), and the globals a chat template sees: range, dict, namespace,
// raise_exception and strftime_now.
#pragma once

#include <string>

#include "llmstudio/tokenizer/jinja_value.h"

namespace llmstudio::tokenizer::jinja {

bool has_filter(const std::string& name);
bool has_test(const std::string& name);
// Throws RuntimeError for unknown names or bad arguments.
Value apply_filter(const std::string& name, const Value& subject, CallArgs& args);
bool apply_test(const std::string& name, const Value& subject, CallArgs& args);

// The global functions of transformers' chat-template environment.
Dict make_globals();

}  // namespace llmstudio::tokenizer::jinja
