// CausalLM: a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) loaded from a Hugging Face folder, with the
// forward pass (embeddings -> decoder layers with RMSNorm, RoPE, GQA attention via SDPA, SwiGLU MLP -> logits).
// One code path for cpu, cuda and mps; no host<->device synchronisation inside forward().
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "llmstudio/model/architecture.h"
#include "llmstudio/model/attention.h"
#include "llmstudio/model/kv_cache.h"
#include "llmstudio/model/model_config.h"

namespace llmstudio::model {

struct LayerSchema;

// A linear projection, optionally with a LoRA adapter: y = x W^T + b + scaling * B(A(dropout(x))), or with a
// DoRA adapter (lora_magnitude defined) PEFT's weight-decomposed form (model/dora.h).
struct Linear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
  at::Tensor lora_a;  // [r, in] or undefined
  at::Tensor lora_b;  // [out, r]
  at::Tensor lora_magnitude;  // [out] DoRA magnitude vector, or undefined (plain LoRA)
  double lora_scaling = 0.0;
  double lora_dropout = 0.0;
  at::Tensor forward(const at::Tensor& x, bool training = false) const;
};

// A decoder layer's tensors; which ones exist, their names and shapes: model/layer_schema.h.
struct DecoderLayer {
  at::Tensor input_norm;  // RMSNorm weight before attention
  at::Tensor post_norm;   // RMSNorm weight before the MLP
  at::Tensor q_norm, k_norm;  // per-head RMSNorm weights [head_dim] on q and k (Qwen3), else undefined
  Linear q, k, v, o, gate, up, down;
  bool sliding_window = false;
};

struct LoadOptions {
  std::string device = "cpu";   // a torch device string ("cpu", "cuda:0", "mps")
  std::string dtype = "float32";  // "float32", "bfloat16", "float16"
};

// What loading found besides the expected tensors (unexpected ones are ignored, not fatal).
struct LoadReport {
  std::vector<std::string> unexpected;
  std::vector<std::string> ignored;  // known extras, e.g. lm_head.weight of a tied model, rotary buffers
};

// The tensors a checkpoint of `config` must contain, name -> shape.
std::map<std::string, std::vector<std::int64_t>> expected_tensor_shapes(const ModelConfig& config);

class CausalLM {
 public:
  // Loads config.json + safetensors (single or sharded) from a model folder. Missing or mis-shaped tensors
  // are an Error naming them; unexpected ones are listed in report().
  static CausalLM load(const std::filesystem::path& dir, const LoadOptions& options = {});
  // From tensors already in memory (any device/dtype; converted to the options' device/dtype).
  static CausalLM from_tensors(ModelConfig config, const std::map<std::string, at::Tensor>& tensors,
                               const LoadOptions& options = {});

  // input_ids [B, T] (int64); attention_mask [B, S] (1 = token, 0 = padding; left padding supported) or
  // undefined, where S = T, or cache length + T with a cache; position_ids [B, T] or undefined (then derived
  // from the mask: first real token is 0). A boolean attention_mask [B, 1, T, S] (true = may attend) is used
  // as given (packed rows: block-diagonal causal masks); it needs position_ids. With a cache, the new keys/values are appended to it (the caller
  // advances it); a static-mode cache (model/kv_cache.h) needs position_ids and no attention_mask. Returns logits [B, T, vocab] in the model dtype.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                     const at::Tensor& position_ids = {}, KVCache* cache = nullptr) const;
  // The final hidden states [B, T, hidden] (after the last norm). segments (training batches, no cache): the
  // batch's causal segments, which the attention uses instead of attention_mask where the variable-length flash
  // kernel runs (model/attention.h); the mask must still describe the same visibility for the other kernels.
  at::Tensor hidden_states(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                           const at::Tensor& position_ids = {}, KVCache* cache = nullptr,
                           const SequenceSegments* segments = nullptr) const;
  at::Tensor logits(const at::Tensor& hidden) const;
  // The lm_head weight [vocab, hidden] that logits() applies (the embedding table itself when tied).
  const at::Tensor& lm_head_weight() const { return lm_head_; }

  const ModelConfig& config() const { return config_; }
  const LoadReport& report() const { return report_; }
  at::Device device() const { return embed_.device(); }
  at::ScalarType dtype() const { return embed_.scalar_type(); }
  // Parameters with their Hugging Face names (lm_head omitted when tied).
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  std::vector<DecoderLayer>& layers() { return layers_; }
  const std::vector<DecoderLayer>& layers() const { return layers_; }
  // The table of a decoder layer's tensors for this architecture.
  const LayerSchema& layer_schema() const { return *schema_; }
  // Training mode turns LoRA dropout and attention dropout on.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }
  // Dropout on the attention probabilities in training mode (transformers' config.attention_dropout of the
  // Llama family; set from architecture.intermediate_dropout). Draws from the device's default generator.
  void set_attention_dropout(double p);
  double attention_dropout() const { return attention_dropout_; }
  // In training mode with grad on (and no KV cache), recompute each decoder block in backward instead of
  // keeping its activations (model/grad_checkpoint).
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }
  // NEFTune (augmentation.neftune_noise_alpha): in training mode, noise_uniform(+-alpha / sqrt(T * hidden)) is
  // added to the input embeddings (neftune_noise); 0 = off. Never in evaluation or generation (training off).
  void set_neftune_noise_alpha(double alpha) { neftune_alpha_ = alpha; }
  double neftune_noise_alpha() const { return neftune_alpha_; }

  // What inference keeps for this model between calls (infer/decode_step.h: its captured decode steps), made on
  // first use by its owner; copies of the model share it, as they share the weights; the last copy drops it. The
  // owner checks that the weights are still the ones it was made for.
  std::shared_ptr<void>& inference_state() const { return inference_state_->value; }

 private:
  struct InferenceSlot {
    std::shared_ptr<void> value;
  };
  std::shared_ptr<InferenceSlot> inference_state_ = std::make_shared<InferenceSlot>();
  ModelConfig config_;
  LoadReport report_;
  at::Tensor embed_, final_norm_, lm_head_;
  std::vector<DecoderLayer> layers_;
  const LayerSchema* schema_ = nullptr;
  BlockFamily block_ = BlockFamily::Llama;
  at::Tensor inv_freq_;  // on device, float32
  bool training_ = false;
  bool gradient_checkpointing_ = false;
  double attention_dropout_ = 0.0;
  double neftune_alpha_ = 0.0;

  // The decoder block of layer `index`: the architecture row's block family's function.
  at::Tensor layer_forward(std::size_t index, const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                           const AttentionInputs& attn, KVCache* cache) const;
  // The block's projections: q/k/v as [B, H, T, D] views, one Linear, the SwiGLU MLP (fused when they can be:
  // model/projection.h).
  std::tuple<at::Tensor, at::Tensor, at::Tensor> qkv_projections(const DecoderLayer& l, const at::Tensor& x) const;
  at::Tensor project(const Linear& lin, const at::Tensor& x, bool output_needed = true) const;
  // residual + lin(x); in inference on a plain projection one GEMM that adds into `residual` in place (inference
  // only: the block owns that tensor then).
  at::Tensor add_projection(const at::Tensor& residual, const Linear& lin, const at::Tensor& x,
                            bool output_needed = true) const;
  // silu(gate(y)) * up(y), gate and up as one GEMM when they can be.
  at::Tensor swiglu_activation(const DecoderLayer& l, const at::Tensor& y) const;
  // The Llama family's block (Llama, Mistral, Qwen2, Qwen3): RMSNorm, RoPE GQA attention (SDPA), RMSNorm, SwiGLU
  // MLP; with the layer's q_norm/k_norm defined (Qwen3), q and k are RMS-normalised per head before RoPE.
  at::Tensor llama_block(std::size_t index, const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                         const AttentionInputs& attn, KVCache* cache) const;
  // What each query may see: the masks (or none), or the segments for the flash kernel.
  AttentionInputs attention_inputs(const at::Tensor& mask, bool mask4d, std::int64_t past, std::int64_t T,
                                   const SequenceSegments* segments) const;
};

// Positions for left-padded batches: cumsum(mask) - 1, padding positions set to 1 (as transformers' generate).
at::Tensor positions_from_mask(const at::Tensor& attention_mask);

// Boolean attention mask [B, 1, T, S] (true = may attend): causal, key padding, optional sliding window.
// Query rows with no visible key (padding queries) attend to everything, so no NaN appears.
at::Tensor build_attention_mask(const at::Tensor& attention_mask, std::int64_t q_len, std::int64_t past_len,
                                std::optional<std::int64_t> sliding_window, const at::Device& device);

// LlamaRMSNorm; forwards to kernels::rms_norm (the backend picks the implementation).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// Mirrors H2O's neftune_post_forward_hook (utils/modeling_utils.py, as transformers' NEFTune hook):
// embeds [B, T, hidden] + uniform(-m, m) with m = alpha / sqrt(T * hidden) in float32 (T the padded batch
// length), on every position (no attention mask), drawn from the device's default generator.
at::Tensor neftune_noise(const at::Tensor& embeds, double alpha);

}  // namespace llmstudio::model
