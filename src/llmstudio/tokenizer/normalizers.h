// Normalizers of tokenizer.json ("normalizer"): Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase,
// Strip, StripAccents, ByteLevel. They rewrite a piece's text in place; offsets are not tracked.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace llmstudio::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;  // text is valid UTF-8
};

// Builds a normalizer from its JSON object; throws llmstudio::Error naming `file` and the type if unsupported.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& file);

}  // namespace llmstudio::tokenizer
