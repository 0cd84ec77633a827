// ModelConfig: a Hugging Face config.json of a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) as a plain struct,
// with validate(). Reads both the transformers v4 keys (rope_theta, rope_scaling) and the v5 ones
// (rope_parameters, dtype, layer_types).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace llmstudio::model {

struct RopeConfig {
  std::string type = "default";  // "default", "linear", "llama3"
  double theta = 10000.0;
  double factor = 1.0;                        // linear, llama3
  double low_freq_factor = 1.0;               // llama3
  double high_freq_factor = 4.0;              // llama3
  std::int64_t original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
  std::string architecture;  // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2", "qwen3"
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  std::string hidden_act = "silu";
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // bias on q/k/v (and o for Llama's attention_bias)
  bool o_proj_bias = false;
  bool mlp_bias = false;
  std::optional<std::int64_t> sliding_window;  // tokens a query may look back (inclusive of itself)
  std::vector<bool> layer_uses_sliding_window;  // per layer
  std::string torch_dtype = "float32";          // dtype the checkpoint was saved in
  std::optional<std::int64_t> bos_token_id, pad_token_id;
  std::vector<std::int64_t> eos_token_ids;

  // Throws llmstudio::Error naming the key, the value and what is allowed.
  void validate() const;

  // The parameter count implied by the shapes (embeddings counted once when tied).
  std::int64_t parameter_count() const;
};

// Parses config.json text; `source` names the file in errors.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source);
// Reads <dir>/config.json (or the file itself).
ModelConfig load_model_config(const std::filesystem::path& path);

}  // namespace llmstudio::model
