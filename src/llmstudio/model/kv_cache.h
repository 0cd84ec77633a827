// KVCache: preallocated key/value buffers for every decoder layer, [batch, kv_heads, capacity, head_dim].
// Allocated once per generation; prefill and decode steps write into it in place, so no step reallocates.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "llmstudio/model/model_config.h"

namespace llmstudio::model {

struct KVCache {
  std::vector<at::Tensor> k, v;  // one per layer
  std::int64_t length = 0;       // filled positions
  std::int64_t capacity = 0;

  static KVCache allocate(const ModelConfig& config, std::int64_t batch, std::int64_t capacity,
                          const at::Device& device, at::ScalarType dtype);
  // Writes layer's k/v [B, H, T, D] at [length, length + T) and returns views of [0, length + T).
  // advance() moves `length` once all layers have written the step.
  std::pair<at::Tensor, at::Tensor> append(std::size_t layer, const at::Tensor& k_new, const at::Tensor& v_new) const;
  void advance(std::int64_t tokens);
  void reset() { length = 0; }
  // Keeps only the given batch rows (e.g. after some sequences finished); index is a 1-D long tensor.
  void select_rows(const at::Tensor& index);
};

}  // namespace llmstudio::model
