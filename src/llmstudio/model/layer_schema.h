// The decoder layer's tensors as data: one LayerSchema per architecture family, a table whose rows name each
// tensor of a layer (Hugging Face leaf name, GGUF name, the DecoderLayer field it fills, its shape rule, when it
// is present, whether LoRA may target it and under which PEFT name), plus how fused tensors split. Loading,
// named_parameters, LoRA (attach/save/load/merge), gradient checkpointing's trainable tensors, full-model save,
// merged export and GGUF import all iterate this table, so a new tensor is added here and nowhere else.
// The table is selected by the architecture row (model/architecture.h), as is the family's block function.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/model_config.h"

namespace llmstudio::model {

// Which DecoderLayer field a tensor fills: a norm weight, or a projection (weight or bias of that Linear).
// QNorm/KNorm: Qwen3's per-head RMSNorm weights on q and k (after the projection, before RoPE).
enum class LayerRole { InputNorm, PostNorm, QNorm, KNorm, Q, K, V, O, Gate, Up, Down };

// One dimension of a shape rule, from the config.
enum class LayerDim { None, Hidden, HeadDim, QOut, KvOut, Intermediate };

// When an optional tensor exists (config flags); Always for the rest.
enum class LayerPresence { Always, AttentionBias, OProjBias, MlpBias };

struct LayerTensor {
  const char* hf_leaf;    // "self_attn.q_proj.weight" (after "model.layers.<i>.")
  const char* gguf_name;  // "attn_q" (between "blk.<i>." and ".weight"/".bias")
  LayerRole role;
  bool is_bias;           // the Linear's bias (else its weight, or a norm weight)
  LayerDim rows;          // shape rule: [rows] or [rows, cols]
  LayerDim cols;          // None for 1-d tensors
  LayerPresence presence;
  const char* lora_name;  // PEFT / target_modules short name ("q_proj") if LoRA may target it, else nullptr
};

// How a fused projection splits into the schema's roles, along dim 0 ("qkv_proj" -> q, k, v). Defined for the
// fused architectures (Phi-3); the Llama family has none.
struct FusedSplit {
  const char* hf_module;  // "self_attn.qkv_proj"
  const char* peft_name;  // "qkv_proj"
  std::vector<LayerRole> parts;
};

struct LayerSchema {
  const char* family;  // "llama"
  std::vector<LayerTensor> tensors;  // in named_parameters order
  std::vector<FusedSplit> fused;
};

// The Llama family's layer (Llama, Mistral, Qwen2).
const LayerSchema& llama_layer_schema();
// Qwen3's layer: the Llama rows plus self_attn.q_norm / self_attn.k_norm ([head_dim], GGUF attn_q_norm/attn_k_norm).
const LayerSchema& qwen3_layer_schema();
// The schema of a supported architecture ("LlamaForCausalLM"); Error listing the supported ones otherwise.
const LayerSchema& layer_schema(std::string_view hf_architecture);

// Shape rule and presence of a row under a config.
std::vector<std::int64_t> tensor_shape(const LayerTensor& t, const ModelConfig& c);
bool tensor_present(const LayerTensor& t, const ModelConfig& c);
// Row sizes of each part of a fused projection (q, k, v rows), in order.
std::vector<std::int64_t> fused_split_sizes(const FusedSplit& f, const ModelConfig& c);

// Whether a role is a norm weight (no Linear).
bool is_norm_role(LayerRole role);
// The Linear a projection role fills (nullptr for norms), and the tensor a row fills.
Linear* layer_linear(DecoderLayer& l, LayerRole role);
const Linear* layer_linear(const DecoderLayer& l, LayerRole role);
at::Tensor& layer_tensor(DecoderLayer& l, const LayerTensor& t);
const at::Tensor& layer_tensor(const DecoderLayer& l, const LayerTensor& t);

// The rows LoRA may target (projection weights), in order, and their short names.
std::vector<const LayerTensor*> lora_targets(const LayerSchema& s);
std::vector<std::string> lora_target_names(const LayerSchema& s);
// The row of a LoRA short name, or nullptr.
const LayerTensor* lora_target(const LayerSchema& s, std::string_view short_name);
// The Hugging Face module path of a row ("self_attn.q_proj" for "self_attn.q_proj.weight").
std::string module_path(const LayerTensor& t);
// The module path of a GGUF layer tensor base name ("attn_q" -> "self_attn.q_proj"), "" if unknown.
std::string module_for_gguf(const LayerSchema& s, std::string_view gguf_name);
// "blk.N.{attn_norm,attn_q,...}" for messages.
std::string gguf_layer_names(const LayerSchema& s);

// Every Linear of a layer (one per projection role), in schema order.
std::vector<const Linear*> layer_linears(const LayerSchema& s, const DecoderLayer& l);

}  // namespace llmstudio::model
