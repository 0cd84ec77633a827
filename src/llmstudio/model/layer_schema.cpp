// The layer schemas (see layer_schema.h).
#include "llmstudio/model/layer_schema.h"

#include <set>

#include "llmstudio/core/error.h"
#include "llmstudio/model/architecture.h"

namespace llmstudio::model {

const LayerSchema& llama_layer_schema() {
  using R = LayerRole;
  using D = LayerDim;
  using P = LayerPresence;
  // transformers' LlamaDecoderLayer / MistralDecoderLayer / Qwen2DecoderLayer; GGUF names as llama.cpp's
  // convert_hf_to_gguf writes them (LLM_TENSOR_ATTN_Q, ...).
  static const LayerSchema s{
      "llama",
      {
          {"input_layernorm.weight", "attn_norm", R::InputNorm, false, D::Hidden, D::None, P::Always, nullptr},
          {"self_attn.q_proj.weight", "attn_q", R::Q, false, D::QOut, D::Hidden, P::Always, "q_proj"},
          {"self_attn.q_proj.bias", "attn_q", R::Q, true, D::QOut, D::None, P::AttentionBias, nullptr},
          {"self_attn.k_proj.weight", "attn_k", R::K, false, D::KvOut, D::Hidden, P::Always, "k_proj"},
          {"self_attn.k_proj.bias", "attn_k", R::K, true, D::KvOut, D::None, P::AttentionBias, nullptr},
          {"self_attn.v_proj.weight", "attn_v", R::V, false, D::KvOut, D::Hidden, P::Always, "v_proj"},
          {"self_attn.v_proj.bias", "attn_v", R::V, true, D::KvOut, D::None, P::AttentionBias, nullptr},
          {"self_attn.o_proj.weight", "attn_output", R::O, false, D::Hidden, D::QOut, P::Always, "o_proj"},
          {"self_attn.o_proj.bias", "attn_output", R::O, true, D::Hidden, D::None, P::OProjBias, nullptr},
          {"mlp.gate_proj.weight", "ffn_gate", R::Gate, false, D::Intermediate, D::Hidden, P::Always, "gate_proj"},
          {"mlp.gate_proj.bias", "ffn_gate", R::Gate, true, D::Intermediate, D::None, P::MlpBias, nullptr},
          {"mlp.up_proj.weight", "ffn_up", R::Up, false, D::Intermediate, D::Hidden, P::Always, "up_proj"},
          {"mlp.up_proj.bias", "ffn_up", R::Up, true, D::Intermediate, D::None, P::MlpBias, nullptr},
          {"mlp.down_proj.weight", "ffn_down", R::Down, false, D::Hidden, D::Intermediate, P::Always, "down_proj"},
          {"mlp.down_proj.bias", "ffn_down", R::Down, true, D::Hidden, D::None, P::MlpBias, nullptr},
          {"post_attention_layernorm.weight", "ffn_norm", R::PostNorm, false, D::Hidden, D::None, P::Always, nullptr},
      },
      {}};
  return s;
}

const LayerSchema& qwen3_layer_schema() {
  // transformers' Qwen3Attention: q_norm/k_norm are RMSNorm weights over head_dim, shared by all heads; GGUF
  // names as llama.cpp writes qwen3 (LLM_TENSOR_ATTN_Q_NORM, LLM_TENSOR_ATTN_K_NORM).
  static const LayerSchema s = [] {
    LayerSchema q = llama_layer_schema();
    q.family = "qwen3";
    auto at_row = [&](const char* leaf) {
      for (auto it = q.tensors.begin(); it != q.tensors.end(); ++it)
        if (std::string_view(it->hf_leaf) == leaf) return it;
      fail("internal: llama schema has no row '", leaf, "'");
    };
    // named_parameters order as transformers: q_proj, k_proj, v_proj, o_proj, q_norm, k_norm.
    auto after_o = at_row("self_attn.o_proj.bias") + 1;
    q.tensors.insert(after_o, {{"self_attn.q_norm.weight", "attn_q_norm", LayerRole::QNorm, false, LayerDim::HeadDim,
                                LayerDim::None, LayerPresence::Always, nullptr},
                               {"self_attn.k_norm.weight", "attn_k_norm", LayerRole::KNorm, false, LayerDim::HeadDim,
                                LayerDim::None, LayerPresence::Always, nullptr}});
    return q;
  }();
  return s;
}

const LayerSchema& layer_schema(std::string_view hf_architecture) {
  return architecture_spec(hf_architecture).layer_schema();
}

namespace {

std::int64_t dim_size(LayerDim d, const ModelConfig& c) {
  switch (d) {
    case LayerDim::Hidden: return c.hidden_size;
    case LayerDim::HeadDim: return c.head_dim;
    case LayerDim::QOut: return c.num_attention_heads * c.head_dim;
    case LayerDim::KvOut: return c.num_key_value_heads * c.head_dim;
    case LayerDim::Intermediate: return c.intermediate_size;
    case LayerDim::None: break;
  }
  return 0;
}

LayerDim role_rows(LayerRole r) {
  switch (r) {
    case LayerRole::Q: return LayerDim::QOut;
    case LayerRole::K:
    case LayerRole::V: return LayerDim::KvOut;
    case LayerRole::Gate:
    case LayerRole::Up: return LayerDim::Intermediate;
    default: return LayerDim::Hidden;
  }
}

}  // namespace

std::vector<std::int64_t> tensor_shape(const LayerTensor& t, const ModelConfig& c) {
  if (t.cols == LayerDim::None) return {dim_size(t.rows, c)};
  return {dim_size(t.rows, c), dim_size(t.cols, c)};
}

bool tensor_present(const LayerTensor& t, const ModelConfig& c) {
  switch (t.presence) {
    case LayerPresence::Always: return true;
    case LayerPresence::AttentionBias: return c.attention_bias;
    case LayerPresence::OProjBias: return c.o_proj_bias;
    case LayerPresence::MlpBias: return c.mlp_bias;
  }
  return false;
}

std::vector<std::int64_t> fused_split_sizes(const FusedSplit& f, const ModelConfig& c) {
  std::vector<std::int64_t> sizes;
  for (LayerRole r : f.parts) sizes.push_back(dim_size(role_rows(r), c));
  return sizes;
}

bool is_norm_role(LayerRole role) {
  return role == LayerRole::InputNorm || role == LayerRole::PostNorm || role == LayerRole::QNorm ||
         role == LayerRole::KNorm;
}

Linear* layer_linear(DecoderLayer& l, LayerRole role) {
  return const_cast<Linear*>(layer_linear(static_cast<const DecoderLayer&>(l), role));
}

const Linear* layer_linear(const DecoderLayer& l, LayerRole role) {
  switch (role) {
    case LayerRole::Q: return &l.q;
    case LayerRole::K: return &l.k;
    case LayerRole::V: return &l.v;
    case LayerRole::O: return &l.o;
    case LayerRole::Gate: return &l.gate;
    case LayerRole::Up: return &l.up;
    case LayerRole::Down: return &l.down;
    case LayerRole::InputNorm:
    case LayerRole::PostNorm:
    case LayerRole::QNorm:
    case LayerRole::KNorm: break;
  }
  return nullptr;
}

const at::Tensor& layer_tensor(const DecoderLayer& l, const LayerTensor& t) {
  if (t.role == LayerRole::InputNorm) return l.input_norm;
  if (t.role == LayerRole::PostNorm) return l.post_norm;
  if (t.role == LayerRole::QNorm) return l.q_norm;
  if (t.role == LayerRole::KNorm) return l.k_norm;
  const Linear* lin = layer_linear(l, t.role);
  return t.is_bias ? lin->bias : lin->weight;
}

at::Tensor& layer_tensor(DecoderLayer& l, const LayerTensor& t) {
  return const_cast<at::Tensor&>(layer_tensor(static_cast<const DecoderLayer&>(l), t));
}

std::vector<const LayerTensor*> lora_targets(const LayerSchema& s) {
  std::vector<const LayerTensor*> out;
  for (const auto& t : s.tensors)
    if (t.lora_name) out.push_back(&t);
  return out;
}

std::vector<std::string> lora_target_names(const LayerSchema& s) {
  std::vector<std::string> out;
  for (const auto* t : lora_targets(s)) out.emplace_back(t->lora_name);
  return out;
}

const LayerTensor* lora_target(const LayerSchema& s, std::string_view short_name) {
  for (const auto* t : lora_targets(s))
    if (short_name == t->lora_name) return t;
  return nullptr;
}

std::string module_path(const LayerTensor& t) {
  const std::string leaf = t.hf_leaf;
  return leaf.substr(0, leaf.rfind('.'));
}

std::string module_for_gguf(const LayerSchema& s, std::string_view gguf_name) {
  for (const auto& t : s.tensors)
    if (gguf_name == t.gguf_name) return module_path(t);
  return "";
}

std::string gguf_layer_names(const LayerSchema& s) {
  std::string names;
  std::set<std::string> seen;
  for (const auto& t : s.tensors)
    if (seen.insert(t.gguf_name).second) names += (names.empty() ? "" : ",") + std::string(t.gguf_name);
  return "blk.N.{" + names + "}";
}

std::vector<const Linear*> layer_linears(const LayerSchema& s, const DecoderLayer& l) {
  std::vector<const Linear*> out;
  for (const auto& t : s.tensors)
    if (!t.is_bias && !is_norm_role(t.role))
      out.push_back(layer_linear(l, t.role));
  return out;
}

}  // namespace llmstudio::model
