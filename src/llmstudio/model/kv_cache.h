// KVCache: preallocated key/value buffers for every decoder layer, [batch, kv_heads, capacity, head_dim].
// Allocated once per generation; prefill and decode steps write into it in place, so no step reallocates.
// Two modes: dynamic (a host-side `length`; append() returns views of the filled columns) for prefill and
// forward() callers, and static (infer/decode_step.h): the write columns are a device tensor, append() returns
// the whole buffers and the attention masks hide the columns not filled yet, so a step has fixed shapes and
// reads nothing from the host.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "llmstudio/model/attention.h"
#include "llmstudio/model/model_config.h"

namespace llmstudio::model {

struct KVCache {
  std::vector<at::Tensor> k, v;  // one per layer
  std::int64_t length = 0;       // filled positions
  std::int64_t capacity = 0;
  // Static mode when defined: long [T] on the device, the columns append() writes the T new positions at.
  at::Tensor write_index;
  // Static mode: what each new query may see, masks [B, 1, T, capacity] over all columns (set by the owner).
  AttentionInputs static_attention;

  static KVCache allocate(const ModelConfig& config, std::int64_t batch, std::int64_t capacity,
                          const at::Device& device, at::ScalarType dtype);
  // Dynamic mode: writes layer's k/v [B, H, T, D] at [length, length + T) and returns views of [0, length + T);
  // advance() moves `length` once all layers have written the step. Static mode: writes them at the columns of
  // write_index (index_copy_, no host value) and returns the whole [B, H, capacity, D] buffers.
  std::pair<at::Tensor, at::Tensor> append(std::size_t layer, const at::Tensor& k_new, const at::Tensor& v_new) const;
  void advance(std::int64_t tokens);
  void reset() { length = 0; }
  bool is_static() const { return write_index.defined(); }
  // Keeps only the given batch rows (e.g. after some sequences finished); index is a 1-D long tensor.
  void select_rows(const at::Tensor& index);
};

}  // namespace llmstudio::model
