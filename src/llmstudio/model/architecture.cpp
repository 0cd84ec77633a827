// The table of supported architectures.
#include "llmstudio/model/architecture.h"

#include "llmstudio/core/error.h"
#include "llmstudio/model/layer_schema.h"

namespace llmstudio::model {

const std::vector<ArchitectureSpec>& supported_architectures() {
  static const std::vector<ArchitectureSpec> table = {
      // hf_architecture  model_type qkv_bias attn_bias_key mlp_bias_key sw_all sw_by_layer schema block
      {"LlamaForCausalLM", "llama", false, true, true, false, false, llama_layer_schema, BlockFamily::Llama},
      {"MistralForCausalLM", "mistral", false, false, false, true, false, llama_layer_schema, BlockFamily::Llama},
      {"Qwen2ForCausalLM", "qwen2", true, false, false, false, true, llama_layer_schema, BlockFamily::Llama},
      // Qwen3: attention_bias covers q/k/v/o (default off); per-head q/k norms live in its schema.
      {"Qwen3ForCausalLM", "qwen3", false, true, false, false, true, qwen3_layer_schema, BlockFamily::Llama, 128},
  };
  return table;
}

std::string supported_architecture_list() {
  std::string s;
  for (const auto& a : supported_architectures()) s += (s.empty() ? "" : ", ") + std::string(a.hf_architecture);
  return s;
}

const ArchitectureSpec& architecture_spec(std::string_view hf_architecture) {
  for (const auto& a : supported_architectures())
    if (hf_architecture == a.hf_architecture) return a;
  fail("unsupported architecture '", hf_architecture, "'; supported: ", supported_architecture_list());
}

}  // namespace llmstudio::model
