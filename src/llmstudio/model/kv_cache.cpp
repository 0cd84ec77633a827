// KVCache (see kv_cache.h).
#include "llmstudio/model/kv_cache.h"

#include "llmstudio/core/error.h"

namespace llmstudio::model {

KVCache KVCache::allocate(const ModelConfig& c, std::int64_t batch, std::int64_t capacity, const at::Device& device,
                          at::ScalarType dtype) {
  LLMS_CHECK(batch > 0 && capacity > 0, "KV cache needs batch > 0 and capacity > 0, found ", batch, " and ", capacity);
  KVCache cache;
  cache.capacity = capacity;
  auto opts = at::TensorOptions().device(device).dtype(dtype);
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    cache.k.push_back(at::zeros({batch, c.num_key_value_heads, capacity, c.head_dim}, opts));
    cache.v.push_back(at::zeros({batch, c.num_key_value_heads, capacity, c.head_dim}, opts));
  }
  return cache;
}

std::pair<at::Tensor, at::Tensor> KVCache::append(std::size_t layer, const at::Tensor& k_new,
                                                   const at::Tensor& v_new) const {
  if (is_static()) {
    LLMS_CHECK(k_new.size(2) == write_index.size(0), "static KV cache: ", k_new.size(2), " new positions but ",
               write_index.size(0), " write columns");
    k[layer].index_copy_(2, write_index, k_new);
    v[layer].index_copy_(2, write_index, v_new);
    return {k[layer], v[layer]};
  }
  const std::int64_t t = k_new.size(2);
  LLMS_CHECK(length + t <= capacity, "KV cache overflow: ", length, " + ", t, " positions > capacity ", capacity,
             "; raise the generation length limit");
  k[layer].narrow(2, length, t).copy_(k_new);
  v[layer].narrow(2, length, t).copy_(v_new);
  return {k[layer].narrow(2, 0, length + t), v[layer].narrow(2, 0, length + t)};
}

void KVCache::advance(std::int64_t tokens) { length += tokens; }

void KVCache::select_rows(const at::Tensor& index) {
  for (auto& t : k) t = t.index_select(0, index);
  for (auto& t : v) t = t.index_select(0, index);
}

}  // namespace llmstudio::model
