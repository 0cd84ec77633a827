// Per-architecture differences as data: which Hugging Face architectures are supported, their weight names,
// flags, layer schema (model/layer_schema.h) and block family. Adding a Llama-like architecture means adding a
// row here; another family adds a layer schema and a block function and points its row at them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmstudio::model {

struct LayerSchema;

// The decoder block's forward function a family uses (CausalLM::layer_forward dispatches on it).
enum class BlockFamily { Llama };

struct ArchitectureSpec {
  const char* hf_architecture;  // config.json "architectures"[0]
  const char* model_type;       // config.json "model_type"
  bool qkv_bias;                // q/k/v projections always have a bias (Qwen2)
  bool attention_bias_key;      // config "attention_bias" adds bias to q/k/v/o (Llama)
  bool mlp_bias_key;            // config "mlp_bias" adds bias to the MLP projections (Llama)
  bool sliding_window_all_layers;  // config "sliding_window" applies to every layer (Mistral)
  bool sliding_window_by_layer;    // use_sliding_window/max_window_layers/layer_types decide (Qwen2)
  const LayerSchema& (*layer_schema)();  // the decoder layer's tensors
  BlockFamily block;                      // the decoder block's forward function
  std::int64_t default_head_dim = 0;      // head_dim when config.json lacks it (Qwen3: 128); 0 = hidden / heads
};

// The supported architectures (rows of the table).
const std::vector<ArchitectureSpec>& supported_architectures();
// The row for an architecture name; Error listing the supported ones otherwise.
const ArchitectureSpec& architecture_spec(std::string_view hf_architecture);
// "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"
std::string supported_architecture_list();

// Hugging Face tensor names of the decoder (identical for the supported architectures).
struct WeightNames {
  static std::string embed() { return "model.embed_tokens.weight"; }
  static std::string final_norm() { return "model.norm.weight"; }
  static std::string lm_head() { return "lm_head.weight"; }
  static std::string layer(long i, std::string_view leaf) {
    return "model.layers." + std::to_string(i) + "." + std::string(leaf);
  }
};

}  // namespace llmstudio::model
