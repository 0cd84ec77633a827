// DecodeStep: one token per row through the model against a fixed-capacity KV cache, with static shapes, no
// allocation that depends on the step and no host synchronisation, so that the step can be captured once in a
// CUDA graph and replayed (platform/cuda_graph.h; eager on CPU and MPS through the same call).
//
// It owns the state the step reads and writes, all device tensors allocated once:
//   - the KV cache [B, kv_heads, capacity, head_dim] per layer: prefill fills its first P columns through the
//     model's ordinary forward (the cache's dynamic mode), then begin() switches it to static mode;
//   - column [1] (long): where the next token's key/value go (the write index; P, P+1, ... in the history);
//   - positions [B, 1] (long): the next token's RoPE position per row (real tokens so far; left padding not counted);
//   - key_mask [B, capacity] (bool): the columns holding a real token (prompt or generated). The step sets the new
//     column and attends over all `capacity` keys with it (and a sliding window, where the model has one), so the
//     padding and the columns not yet written are hidden; the token history's repetition penalty reads it too.
// Not here: prefill's own call (the caller runs the model's forward on the prompts), the token choice
// (infer/sampling.h) and the stop conditions (infer/generation.cpp).
//
// One step is step(tokens) then advance(): step() is idempotent for the same tokens (what graph capture needs: the
// warm-up runs it before the captured call), advance() moves column and positions on with two small device ops.
//
// A DecodeStep (its cache and its captured graph) serves many generations: restart() returns it to the prefill
// state, and acquire_decode_step() keeps a model's recent ones (one per batch size and capacity bucket) so that a
// generate() call replays the graph an earlier call captured instead of capturing its own.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/kv_cache.h"
#include "llmstudio/platform/cuda_graph.h"

namespace llmstudio::infer {

class DecodeStep {
 public:
  // A cache for `batch` rows of up to `capacity` tokens (prompt + new) for `lm` (on its device, in its dtype). The
  // model must outlive the DecodeStep and keep its weights at the same addresses (a captured graph reads them).
  DecodeStep(const model::CausalLM& lm, std::int64_t batch, std::int64_t capacity);
  DecodeStep(const DecodeStep&) = delete;
  DecodeStep& operator=(const DecodeStep&) = delete;

  // The cache for prefill, in dynamic mode until begin(): pass it to the model's forward over the prompts.
  model::KVCache& cache() { return cache_; }
  // After prefill wrote the first P columns: prompt_mask [B, P] (1 = a real token; left padding 0) on the device.
  // Sets the key mask, the positions (each row's real token count) and the column (P), and the cache's static mode.
  void begin(const at::Tensor& prompt_mask);
  // tokens [B] (long, on the device): writes them at `column` in every layer's cache and returns the logits of the
  // next position, [B, vocab] float32. With CUDA graphs the result is the graph's static output, overwritten by
  // the next step: read it (queue the work that reads it) before calling step() again.
  at::Tensor step(const at::Tensor& tokens);
  // Moves column and positions one token on (device ops; no host value changes).
  void advance();
  // Back to the state after construction (the cache in dynamic mode and empty), for the next generation; the
  // captured graph stays valid (every buffer it reads keeps its address).
  void restart();
  void attach(const model::CausalLM& lm) { lm_ = &lm; }

  const at::Tensor& column() const { return column_; }      // [1] long
  const at::Tensor& key_mask() const { return key_mask_; }  // [B, capacity] bool
  const at::Tensor& positions() const { return positions_; }  // [B, 1] long
  std::int64_t batch() const { return batch_; }
  std::int64_t capacity() const { return capacity_; }
  std::int64_t prompt_length() const { return prompt_length_; }
  bool uses_cuda_graphs() const { return graphed_.uses_graphs(); }

 private:
  const model::CausalLM* lm_;
  std::int64_t batch_ = 0, capacity_ = 0, prompt_length_ = 0;
  model::KVCache cache_;
  at::Tensor column_, positions_, key_mask_;
  at::Tensor key_index_;  // arange(capacity) [capacity] long: the sliding-window mask's key columns
  platform::GraphedFunction graphed_;

  // The step's work (what a graph captures): inputs {tokens [B]}, outputs {logits [B, vocab] float32}.
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs);
};

// A DecodeStep for `batch` rows of at least `tokens` tokens (prompt + new) of `lm`, ready for prefill. With CUDA
// graphs it comes from the model's pool (model::CausalLM::inference_state): its capacity rounded up to a multiple of
// kDecodeCapacityStep, the most recently used kDecodeStepsKept per model kept, all dropped when the model's weights
// or adapters change (other tensors, or another LoRA scaling, or training mode); one that is in use elsewhere is not
// shared (a fresh one is made). Without graphs (CPU, MPS, LLMS_CUDA_GRAPHS=0) a fresh one of capacity `tokens`.
constexpr std::int64_t kDecodeCapacityStep = 256;
constexpr std::size_t kDecodeStepsKept = 2;
std::shared_ptr<DecodeStep> acquire_decode_step(const model::CausalLM& lm, std::int64_t batch, std::int64_t tokens);

}  // namespace llmstudio::infer
