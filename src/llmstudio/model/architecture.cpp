// The table of supported architectures.
#include "llmstudio/model/architecture.h"

#include "llmstudio/core/error.h"

namespace llmstudio::model {

const std::vector<ArchitectureSpec>& supported_architectures() {
  static const std::vector<ArchitectureSpec> table = {
      // hf_architecture        model_type qkv_bias attn_bias_key mlp_bias_key sw_all sw_by_layer
      {"LlamaForCausalLM", "llama", false, true, true, false, false},
      {"MistralForCausalLM", "mistral", false, false, false, true, false},
      {"Qwen2ForCausalLM", "qwen2", true, false, false, false, true},
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

const std::vector<ProjectionName>& layer_projections() {
  static const std::vector<ProjectionName> p = {
      {"self_attn.q_proj", "q_proj"}, {"self_attn.k_proj", "k_proj"}, {"self_attn.v_proj", "v_proj"},
      {"self_attn.o_proj", "o_proj"}, {"mlp.gate_proj", "gate_proj"}, {"mlp.up_proj", "up_proj"},
      {"mlp.down_proj", "down_proj"},
  };
  return p;
}

}  // namespace llmstudio::model
