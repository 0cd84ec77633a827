// Decode attention: one query token per row against a static KV cache with a key mask, grouped-query heads (GQA),
// inference only (no gradients), through one entry point; the backend picks the implementation:
// - decode_attention_reference: plain libtorch ops in float32 (CPU, MPS, and CUDA calls the kernel does not take);
// - CUDA (LLMS_CUDA_KERNELS): kernels/cuda/decode_attention.cu, split over the keys ("flash-decoding"): one launch
//   computes the partial softmax of each key chunk for the query heads of one kv head (each K/V row read once),
//   a second combines the chunks. Graph capturable (the launch depends on the shapes only; the workspace comes from
//   the caching allocator on the current stream).
#pragma once

#include <ATen/ATen.h>

namespace llmstudio::kernels {

// q [B, Hq, 1, D] (any strides, last dim contiguous: in practice a transposed view of [B, 1, Hq, D]);
// k, v [B, Hk, C, D] (the KV cache buffers; Hq % Hk == 0: query head h reads kv head h / (Hq / Hk));
// key_mask [B, C] bool (true = the query attends to that key column); scale (usually 1 / sqrt(D)).
// Returns [B, 1, Hq * D] in q's dtype (the layout the o projection takes), softmax(scale * q k^T) v over the
// unmasked keys, computed in float32 (float64 for float64 inputs). Every row must have at least one unmasked key
// (a row without one gives zeros).
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                            double scale);
at::Tensor decode_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& key_mask, double scale);

// True when the CUDA kernel takes the call: kernels built and not forced off, CUDA tensors on one device, q, k, v
// of one dtype (float32, bfloat16 or float16), D % 8 == 0 and D <= 256, the shapes above with last dims contiguous,
// key_mask bool, and no gradient asked for.
bool decode_attention_kernel_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& key_mask);

}  // namespace llmstudio::kernels
