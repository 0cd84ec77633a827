// PCRE2 wrapper (see regex.h): UTF + UCP compile, JIT when available, per-thread match data and JIT stack.
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include "llmstudio/tokenizer/regex.h"

#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "llmstudio/core/error.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::tokenizer {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

namespace {
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  ThreadMatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};
ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

std::shared_ptr<Regex::Code> compile(const std::string& pattern, uint32_t extra, const std::string& context);
}  // namespace

Regex::Regex(const std::string& pattern, const std::string& context) : pattern_(pattern) {
  code_ = compile(pattern, 0, context);
}

Regex Regex::literal(std::string_view literal, const std::string& context) {
  Regex r(std::string(), context);
  r.pattern_ = std::string(literal);
  r.code_ = literal.empty() ? nullptr : compile(r.pattern_, PCRE2_LITERAL, context);
  return r;
}

Regex pattern_from_json(const nlohmann::json& pattern, const std::string& context) {
  LLMS_CHECK(pattern.is_object() && pattern.size() == 1, context,
             ": pattern must be {\"String\": ...} or {\"Regex\": ...}, found ", io::json_preview(pattern));
  auto it = pattern.begin();
  LLMS_CHECK(it.value().is_string(), context, ": pattern value must be a string, found ", io::json_preview(pattern));
  if (it.key() == "String") return Regex::literal(it.value().get<std::string>(), context);
  if (it.key() == "Regex") return Regex(it.value().get<std::string>(), context);
  fail(context, ": unknown pattern kind \"", it.key(), "\" (expected String or Regex)");
}

namespace {
std::shared_ptr<Regex::Code> compile(const std::string& pattern, uint32_t extra, const std::string& context) {
  LLMS_CHECK(unicode::is_valid_utf8(pattern), context, ": regex pattern is not valid UTF-8");
  int err = 0;
  PCRE2_SIZE offset = 0;
  uint32_t options = PCRE2_UTF | extra | ((extra & PCRE2_LITERAL) ? 0 : PCRE2_UCP);
  auto code = std::make_shared<Regex::Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err, &offset,
                             nullptr);
  if (!code->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    fail(context, ": invalid regex /", pattern, "/ at offset ", offset, ": ", reinterpret_cast<const char*>(buf));
  }
  code->jit = pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE) == 0;
  return code;
}
}  // namespace

void Regex::find_all(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out) const {
  out.clear();
  if (!code_) return;
  auto& ts = thread_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t pos = 0;
  std::size_t last_match_end = static_cast<std::size_t>(-1);
  while (pos <= text.size()) {
    int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), pos, 0, ts.data, ts.context)
                        : pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, ts.data, ts.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof buf);
      fail("tokenizer: regex /", pattern_, "/ failed to match: ", reinterpret_cast<const char*>(buf));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.data);
    std::size_t s = ov[0], e = ov[1];
    if (s == e && e == last_match_end) {
      // No empty match right after the previous match: step one character and search again.
      if (pos >= text.size()) break;
      pos += unicode::utf8_len(static_cast<unsigned char>(text[pos]));
      continue;
    }
    out.emplace_back(s, e);
    pos = e;
    last_match_end = e;
  }
}

}  // namespace llmstudio::tokenizer
