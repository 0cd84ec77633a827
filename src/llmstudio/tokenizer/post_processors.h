// Post-processors of tokenizer.json ("post_processor"): TemplateProcessing (single-sequence template),
// ByteLevel (ids unchanged), RobertaProcessing, BertProcessing and Sequence. They add BOS/EOS/CLS/SEP ids
// when encode() is called with add_special_tokens=true.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace llmstudio::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Rewrites the ids of one encoded sequence; only called with add_special_tokens=true.
  virtual void process(std::vector<int32_t>& ids) const = 0;
};

// Builds a post-processor from its JSON object; throws llmstudio::Error naming `file` and the type if unsupported.
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j, const std::string& file);

}  // namespace llmstudio::tokenizer
