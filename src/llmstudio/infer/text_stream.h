// TextStream: turns generated token ids into text increments for streaming, never splitting a UTF-8
// character: text is held back while the decoded tail is an incomplete byte sequence (shown as U+FFFD).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmstudio/tokenizer/tokenizer.h"

namespace llmstudio::infer {

class TextStream {
 public:
  explicit TextStream(const tokenizer::Tokenizer& tok, bool skip_special_tokens = true)
      : tok_(tok), skip_special_(skip_special_tokens) {}
  // Adds a token; returns the text that became final (possibly empty).
  std::string push(std::int64_t token);
  // Returns whatever is still held back (at the end of generation).
  std::string flush();
  const std::string& text() const { return emitted_; }

 private:
  const tokenizer::Tokenizer& tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  std::string emitted_;
};

}  // namespace llmstudio::infer
