// Compiled PCRE2 regular expression (UTF + UCP, JIT) used by the Split/ByteLevel pre-tokenizers and the Replace
// normalizer/decoder. Compiled once at load time; find_all() is const and thread-safe (per-thread match data).
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmstudio::tokenizer {

class Regex {
 public:
  // Throws llmstudio::Error naming `context` (file/component) when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& context);
  // A regex matching `literal` exactly (an empty literal matches nothing).
  static Regex literal(std::string_view literal, const std::string& context);

  // Non-overlapping matches [begin, end) left to right (empty matches never directly follow a previous match,
  // like Rust's find_iter). `text` must be valid UTF-8.
  void find_all(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

  struct Code;  // compiled PCRE2 code (regex.cpp)

 private:
  std::string pattern_;
  std::shared_ptr<Code> code_;
};

// A tokenizer.json pattern object: {"String": "literal"} or {"Regex": "pattern"}. An empty String matches nothing.
Regex pattern_from_json(const nlohmann::json& pattern, const std::string& context);

}  // namespace llmstudio::tokenizer
