// CausalLM loading and forward pass (see causal_lm.h).
#include "llmstudio/model/causal_lm.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>

#include <set>

#include "llmstudio/core/error.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/kernels/rms_norm.h"
#include "llmstudio/kernels/rope.h"
#include "llmstudio/kernels/swiglu.h"
#include "llmstudio/model/architecture.h"
#include "llmstudio/model/dora.h"
#include "llmstudio/model/grad_checkpoint.h"
#include "llmstudio/model/layer_schema.h"
#include "llmstudio/model/projection.h"
#include "llmstudio/model/rope.h"

namespace llmstudio::model {
namespace {

at::ScalarType scalar_type(const std::string& dtype) {
  if (dtype == "float32") return at::kFloat;
  if (dtype == "bfloat16") return at::kBFloat16;
  if (dtype == "float16") return at::kHalf;
  fail("unknown dtype '", dtype, "'; allowed: float32, bfloat16, float16");
}

std::string shape_str(at::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

std::string list_some(const std::vector<std::string>& names, size_t n = 8) {
  std::string r;
  for (size_t i = 0; i < names.size() && i < n; ++i) r += (i ? ", " : "") + names[i];
  if (names.size() > n) r += ", ... (" + std::to_string(names.size()) + " in all)";
  return r;
}

bool is_known_extra(const std::string& name) {
  return name.find("rotary_emb.inv_freq") != std::string::npos;
}

}  // namespace

at::Tensor Linear::forward(const at::Tensor& x, bool training) const {
  at::Tensor y = at::linear(x, weight, bias);
  if (!lora_a.defined()) return y;
  // As PEFT: the adapter runs in its own dtype (float32 master weights), the sum in the layer's dtype. Under
  // autocast the adapter's matmuls run in the autocast dtype anyway: a float32 copy of x would only be cast back.
  const bool autocast = at::autocast::is_autocast_enabled(x.device().type());
  at::Tensor xd = autocast ? x : x.to(lora_a.scalar_type());
  const bool dropped = training && lora_dropout > 0;
  if (dropped) xd = at::dropout(xd, lora_dropout, true);
  if (lora_magnitude.defined()) return dora_output(*this, xd, y, dropped);
  const at::Tensor xa = at::linear(xd, lora_a);
  if (!autocast) return y + (at::linear(xa, lora_b) * lora_scaling).to(y.scalar_type());
  // Mixed precision: y + xa (s B)^T as one GEMM whose epilogue adds y (no separate scale, add or cast kernels;
  // the sum is accumulated in float32 and rounded once).
  const std::int64_t out = y.size(-1);
  return at::addmm(y.reshape({-1, out}), xa.reshape({-1, xa.size(-1)}), (lora_b * lora_scaling).t()).view(y.sizes());
}

std::map<std::string, std::vector<std::int64_t>> expected_tensor_shapes(const ModelConfig& c) {
  std::map<std::string, std::vector<std::int64_t>> s;
  const std::int64_t h = c.hidden_size;
  s[WeightNames::embed()] = {c.vocab_size, h};
  s[WeightNames::final_norm()] = {h};
  if (!c.tie_word_embeddings) s[WeightNames::lm_head()] = {c.vocab_size, h};
  const LayerSchema& schema = layer_schema(c.architecture);
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
    for (const auto& t : schema.tensors)
      if (tensor_present(t, c)) s[WeightNames::layer(i, t.hf_leaf)] = tensor_shape(t, c);
  return s;
}

CausalLM CausalLM::load(const std::filesystem::path& dir, const LoadOptions& options) {
  ModelConfig config = load_model_config(dir);
  auto ckpt = io::SafetensorsCheckpoint::open(dir);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& name : ckpt.names()) tensors.emplace(name, ckpt.tensor(name));
  try {
    return from_tensors(std::move(config), tensors, options);
  } catch (const Error& e) {
    fail(dir.string(), ": ", e.what());
  }
}

CausalLM CausalLM::from_tensors(ModelConfig config, const std::map<std::string, at::Tensor>& tensors,
                                const LoadOptions& options) {
  config.validate();
  const auto expected = expected_tensor_shapes(config);
  std::vector<std::string> missing, misshaped;
  for (const auto& [name, shape] : expected) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      missing.push_back(name);
    } else if (it->second.sizes() != at::IntArrayRef(shape)) {
      misshaped.push_back(name + " (expected " + shape_str(shape) + ", found " + shape_str(it->second.sizes()) + ")");
    }
  }
  LLMS_CHECK(missing.empty(), "missing tensors for ", config.architecture, ": ", list_some(missing),
             "; the checkpoint does not match config.json");
  LLMS_CHECK(misshaped.empty(), "tensors with the wrong shape: ", list_some(misshaped, 4),
             "; the checkpoint does not match config.json");

  CausalLM m;
  for (const auto& [name, t] : tensors) {
    if (expected.count(name)) continue;
    if (name == WeightNames::lm_head() && config.tie_word_embeddings)
      m.report_.ignored.push_back(name + " (tie_word_embeddings: the embedding matrix is used)");
    else if (is_known_extra(name))
      m.report_.ignored.push_back(name);
    else
      m.report_.unexpected.push_back(name);
  }
  const at::Device device(options.device);
  const at::ScalarType dtype = scalar_type(options.dtype);
  // Always copy: loaded tensors may view a read-only file mapping, and training updates weights in place.
  auto get = [&](const std::string& name) {
    return tensors.at(name).to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
  };
  m.config_ = std::move(config);
  const ModelConfig& c = m.config_;
  m.embed_ = get(WeightNames::embed());
  m.final_norm_ = get(WeightNames::final_norm());
  m.lm_head_ = c.tie_word_embeddings ? m.embed_ : get(WeightNames::lm_head());
  m.schema_ = &model::layer_schema(c.architecture);
  m.block_ = architecture_spec(c.architecture).block;
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    DecoderLayer l;
    for (const auto& t : m.schema_->tensors) {
      const std::string name = WeightNames::layer(i, t.hf_leaf);
      if (expected.count(name)) layer_tensor(l, t) = get(name);
    }
    l.sliding_window = c.layer_uses_sliding_window[static_cast<size_t>(i)];
    // Projections that read the same input in one buffer each: fused_projection runs them as one GEMM.
    stack_weight_storage({&l.q, &l.k, &l.v});
    stack_weight_storage({&l.gate, &l.up});
    m.layers_.push_back(std::move(l));
  }
  m.inv_freq_ = rope_inv_freq(c.rope, c.head_dim).to(device);
  return m;
}

std::vector<std::pair<std::string, at::Tensor>> CausalLM::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> p;
  p.emplace_back(WeightNames::embed(), embed_);
  for (size_t i = 0; i < layers_.size(); ++i)
    for (const auto& t : schema_->tensors) {
      const at::Tensor& x = layer_tensor(layers_[i], t);
      if (x.defined()) p.emplace_back(WeightNames::layer(static_cast<long>(i), t.hf_leaf), x);
    }
  p.emplace_back(WeightNames::final_norm(), final_norm_);
  if (!config_.tie_word_embeddings) p.emplace_back(WeightNames::lm_head(), lm_head_);
  return p;
}

void CausalLM::set_attention_dropout(double p) {
  LLMS_CHECK(p >= 0 && p < 1, "attention dropout must be in [0, 1), found ", p,
             " (architecture.intermediate_dropout)");
  attention_dropout_ = p;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return kernels::rms_norm(x, weight, eps);
}

at::Tensor positions_from_mask(const at::Tensor& attention_mask) {
  at::Tensor pos = attention_mask.to(at::kLong).cumsum(-1) - 1;
  return pos.masked_fill(attention_mask.eq(0), 1);
}

at::Tensor build_attention_mask(const at::Tensor& attention_mask, std::int64_t q_len, std::int64_t past_len,
                                std::optional<std::int64_t> sliding_window, const at::Device& device) {
  const std::int64_t kv_len = past_len + q_len;
  auto lopts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor q_idx = at::arange(past_len, kv_len, lopts).view({-1, 1});
  at::Tensor k_idx = at::arange(0, kv_len, lopts).view({1, -1});
  at::Tensor allowed = k_idx.le(q_idx);  // causal
  if (sliding_window) allowed = allowed.logical_and(k_idx.gt(q_idx - *sliding_window));
  allowed = allowed.view({1, 1, q_len, kv_len});
  if (attention_mask.defined()) {
    at::Tensor keys = attention_mask.to(device).to(at::kBool).view({attention_mask.size(0), 1, 1, kv_len});
    allowed = allowed.logical_and(keys);
  }
  // Rows that see nothing (queries at padding positions) would give NaN: let them see everything.
  return allowed.logical_or(allowed.any(-1, /*keepdim=*/true).logical_not());
}

at::Tensor CausalLM::layer_forward(std::size_t index, const at::Tensor& h, const at::Tensor& cos,
                                   const at::Tensor& sin, const AttentionInputs& attn, KVCache* cache) const {
  switch (block_) {
    case BlockFamily::Llama: break;
  }
  return llama_block(index, h, cos, sin, attn, cache);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> CausalLM::qkv_projections(const DecoderLayer& l, const at::Tensor& x) const {
  const auto& c = config_;
  const std::int64_t B = x.size(0), T = x.size(1), D = c.head_dim, Hq = c.num_attention_heads, Hk = c.num_key_value_heads;
  auto heads = [&](const at::Tensor& t, std::int64_t n) { return t.view({B, T, n, D}).transpose(1, 2); };
  const ProjectionGroup group{&l.q, &l.k, &l.v};
  at::Tensor qkv;
  if (const at::Tensor w = inference_stacked_weight(group, training_); w.defined())
    qkv = at::linear(x, w);
  else if (fused_projection_applies(group, x, training_))
    qkv = fused_projection(group, x);
  if (qkv.defined()) {
    const auto parts = at::split_with_sizes(qkv, {Hq * D, Hk * D, Hk * D}, -1);
    return {heads(parts[0], Hq), heads(parts[1], Hk), heads(parts[2], Hk)};
  }
  return {heads(l.q.forward(x, training_), Hq), heads(l.k.forward(x, training_), Hk), heads(l.v.forward(x, training_), Hk)};
}

at::Tensor CausalLM::project(const Linear& lin, const at::Tensor& x, bool output_needed) const {
  const ProjectionGroup group{&lin};
  return fused_projection_applies(group, x, training_) ? fused_projection(group, x, output_needed)
                                                       : lin.forward(x, training_);
}

at::Tensor CausalLM::add_projection(const at::Tensor& residual, const Linear& lin, const at::Tensor& x,
                                   bool output_needed) const {
  const at::Tensor w = inference_stacked_weight({&lin}, training_);
  if (w.defined() && residual.is_contiguous() && residual.scalar_type() == x.scalar_type() &&
      w.scalar_type() == x.scalar_type() && !at::autocast::is_autocast_enabled(x.device().type())) {
    // Inference: the residual is this block's own tensor (no autograd): the GEMM adds into it (beta 1).
    residual.view({-1, residual.size(-1)}).addmm_(x.reshape({-1, x.size(-1)}), w.t());
    return residual;
  }
  return residual + project(lin, x, output_needed);
}

at::Tensor CausalLM::swiglu_activation(const DecoderLayer& l, const at::Tensor& y) const {
  const ProjectionGroup gate_up{&l.gate, &l.up};
  if (const at::Tensor w = inference_stacked_weight(gate_up, training_); w.defined())
    return kernels::swiglu_packed(at::linear(y, w));
  if (fused_projection_applies(gate_up, y, training_)) return kernels::swiglu_packed(fused_projection(gate_up, y));
  return kernels::swiglu(l.gate.forward(y, training_), l.up.forward(y, training_));
}

at::Tensor CausalLM::llama_block(std::size_t index, const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                                 const AttentionInputs& attn, KVCache* cache) const {
  const auto& c = config_;
  const DecoderLayer& l = layers_[index];
  at::Tensor x = kernels::rms_norm(h, l.input_norm, c.rms_norm_eps);
  auto [q, k, v] = qkv_projections(l, x);
  if (l.q_norm.defined()) {  // Qwen3: RMSNorm over head_dim, per head, before RoPE
    q = kernels::rms_norm(q, l.q_norm, c.rms_norm_eps);
    k = kernels::rms_norm(k, l.k_norm, c.rms_norm_eps);
  }
  if (cache && cache->is_static() && q.size(2) == 1 && cache->write_index.numel() == 1) {
    // A decode step (infer/decode_step.h): RoPE on q and k and the cache write in one kernel on CUDA.
    q = kernels::rope_cache_write(q, k, v, cos, sin, cache->k[index], cache->v[index], cache->write_index);
    k = cache->k[index];
    v = cache->v[index];
  } else {
    q = kernels::apply_rope(q, cos, sin);
    k = kernels::apply_rope(k, cos, sin);
    if (cache) std::tie(k, v) = cache->append(index, k, v);
  }
  const at::Tensor a = attention(q, k, v, attn, l.sliding_window, c.sliding_window, training_ ? attention_dropout_ : 0.0);
  at::Tensor out = add_projection(h, l.o, a);
  // The down projection's output is the block's last term: a checkpoint's recomputation never reads it.
  const at::Tensor act = swiglu_activation(l, kernels::rms_norm(out, l.post_norm, c.rms_norm_eps));
  return add_projection(out, l.down, act, /*output_needed=*/!recomputing_block());
}

AttentionInputs CausalLM::attention_inputs(const at::Tensor& mask, bool mask4d, std::int64_t past, std::int64_t T,
                                           const SequenceSegments* segments) const {
  const at::Device dev = device();
  AttentionInputs in;
  const at::ScalarType compute = at::autocast::is_autocast_enabled(dev.type()) ? at::autocast::get_autocast_dtype(dev.type())
                                                                                : dtype();
  // A batch without padding (one segment per row) needs no segments: SDPA's is_causal path below picks libtorch's
  // fastest kernel (cuDNN's on Hopper: 0.55 vs 0.82 ms forward + backward per layer for the varlen flash kernel,
  // 8 x 1024 tokens, 32/8 heads of 64, H200). cuDNN builds a plan per shape: only for lengths that are multiples
  // of 64 (few shapes); other lengths stay on the flash kernel.
  const bool unpadded = segments && segments->one_per_row(T) && T % 64 == 0 &&
                        !(config_.sliding_window && T > *config_.sliding_window);
  if (unpadded && past == 0) return in;
  if (segments && !segments->empty() && past == 0 && varlen_flash_supported(dev, compute, config_.head_dim)) {
    in.cu_seqlens = at::tensor(segments->offsets, at::kInt).pin_memory().to(dev, /*non_blocking=*/true);
    in.max_seqlen = segments->max_length;
    return in;
  }
  // Without padding or windows, SDPA's is_causal path needs no mask (and can use flash kernels).
  // is_causal in SDPA aligns the causal diagonal to the top-left, which is wrong with cached keys: build a mask,
  // except for one new token (a decode step), which sees every cached key: no mask and no is_causal. A mask there
  // would push SDPA off its fast kernels for every layer of every step (on an H100 in bf16: 46 vs 17 ms a step).
  if (mask4d) {  // as given (packed rows); a sliding window further limits it
    in.full_mask = in.window_mask = mask.to(at::kBool);
    if (config_.sliding_window && past + T > *config_.sliding_window)
      in.window_mask = in.full_mask.logical_and(build_attention_mask({}, T, past, config_.sliding_window, dev));
  } else {
    in.full_mask = (mask.defined() || (past > 0 && T > 1)) ? build_attention_mask(mask, T, past, std::nullopt, dev) : at::Tensor();
    in.window_mask = in.full_mask;
    if (config_.sliding_window && past + T > *config_.sliding_window)
      in.window_mask = build_attention_mask(mask, T, past, config_.sliding_window, dev);
  }
  return in;
}

at::Tensor CausalLM::hidden_states(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                   const at::Tensor& position_ids, KVCache* cache,
                                   const SequenceSegments* segments) const {
  LLMS_CHECK(input_ids.dim() == 2, "input_ids must be [batch, seq], found ", shape_str(input_ids.sizes()));
  const std::int64_t past = cache ? cache->length : 0;
  const std::int64_t B = input_ids.size(0), T = input_ids.size(1);
  const bool mask4d = attention_mask.defined() && attention_mask.dim() == 4;
  LLMS_CHECK(!attention_mask.defined() || mask4d ||
                 (attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == past + T),
             "attention_mask must be [", B, ", ", past + T, "] (batch, cached + new tokens), found ",
             shape_str(attention_mask.sizes()));
  LLMS_CHECK(!mask4d || (attention_mask.size(0) == B && attention_mask.size(1) == 1 && attention_mask.size(2) == T &&
                         attention_mask.size(3) == past + T && position_ids.defined()),
             "a 4-d attention_mask must be [", B, ", 1, ", T, ", ", past + T, "] and come with position_ids, found ",
             shape_str(attention_mask.sizes()));
  // A static cache (infer/decode_step.h) brings its own masks over all its columns; the positions come with the call.
  const bool static_cache = cache && cache->is_static();
  LLMS_CHECK(!static_cache || (position_ids.defined() && !attention_mask.defined()),
             "a static KV cache needs position_ids and no attention_mask (its own masks cover all its columns)");
  const at::Device dev = device();
  at::Tensor ids = input_ids.to(dev);
  at::Tensor mask = attention_mask.defined() ? attention_mask.to(dev) : at::Tensor();
  at::Tensor pos;
  if (position_ids.defined())
    pos = position_ids.to(dev);
  else if (mask.defined())
    pos = positions_from_mask(mask).narrow(1, past, T);
  else
    pos = at::arange(past, past + T, at::TensorOptions().dtype(at::kLong).device(dev)).expand({B, T});
  auto [cos, sin] = rope_cos_sin(inv_freq_, pos, dtype());
  const AttentionInputs attn = static_cache ? cache->static_attention : attention_inputs(mask, mask4d, past, T, segments);
  // As transformers' nn.Embedding(padding_idx=pad_token_id): the pad token's row gets no gradient from the input
  // side (the padding positions, and real tokens that share its id, e.g. an EOS used as pad).
  const std::int64_t pad = config_.pad_token_id.value_or(-1);
  at::Tensor h = at::embedding(embed_, ids, pad >= 0 && pad < config_.vocab_size ? pad : -1);
  if (training_ && neftune_alpha_ > 0) h = neftune_noise(h, neftune_alpha_);
  const bool checkpoint = gradient_checkpointing_ && training_ && !cache && at::GradMode::is_enabled();
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (checkpoint) {
      BlockFn block = [this, i, cos, sin, attn](const at::Tensor& x) { return layer_forward(i, x, cos, sin, attn, nullptr); };
      const bool draws = layer_uses_dropout(*schema_, layers_[i]) || attention_dropout_ > 0;
      h = checkpointed(block, h, trainable_tensors(*schema_, layers_[i]), draws);
    } else {
      h = layer_forward(i, h, cos, sin, attn, cache);
    }
  }
  return kernels::rms_norm(h, final_norm_, config_.rms_norm_eps);
}

at::Tensor neftune_noise(const at::Tensor& embeds, double alpha) {
  LLMS_CHECK(embeds.dim() == 3, "neftune_noise: embeddings must be [batch, seq, hidden], found ", shape_str(embeds.sizes()));
  // H2O: alpha / torch.sqrt(torch.tensor(T * hidden)), i.e. float32 reciprocal(sqrt(dims)) * alpha.
  const float dims = static_cast<float>(embeds.size(1) * embeds.size(2));
  const float mag = (1.0f / std::sqrt(dims)) * static_cast<float>(alpha);
  return embeds + at::zeros_like(embeds).uniform_(-static_cast<double>(mag), static_cast<double>(mag));
}

at::Tensor CausalLM::logits(const at::Tensor& hidden) const { return at::linear(hidden, lm_head_); }

at::Tensor CausalLM::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                             const at::Tensor& position_ids, KVCache* cache) const {
  return logits(hidden_states(input_ids, attention_mask, position_ids, cache));
}

}  // namespace llmstudio::model
