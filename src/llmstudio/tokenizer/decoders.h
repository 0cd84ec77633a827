// Decoders of tokenizer.json ("decoder"): ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder
// and Sequence. Each rewrites the list of token strings (tokenizers' decode_chain); decode() joins the result.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace llmstudio::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Builds a decoder from its JSON object; throws llmstudio::Error naming `file` and the type if unsupported.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& file);

}  // namespace llmstudio::tokenizer
