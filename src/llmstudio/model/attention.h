// Attention of a decoder block: the inputs that say what each query may see (AttentionInputs) and the one
// function that computes it, choosing the kernel:
//   - variable-length flash attention over causal token segments (cumulative offsets into the flattened batch)
//     on CUDA in bf16/fp16: padded and packed training batches need no [B, 1, T, T] mask, and no FLOP is spent
//     on padding or across packed documents;
//   - a split-K decode kernel for one query per row against a static KV cache on CUDA (kernels/decode_attention.h);
//   - libtorch's scaled_dot_product_attention otherwise: is_causal without a mask (flash/cuDNN kernels), or the
//     boolean mask built by the caller (CPU, MPS, float32, KV caches, token-masking augmentation).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace llmstudio::model {

// Causal segments of a [B, T] batch read as one sequence of B*T tokens: segment i covers tokens
// offsets[i] .. offsets[i+1]-1 and attends only within itself, causally. Left padding is a segment of its own
// (its outputs are never used); so is the padding at the end of a packed row.
struct SequenceSegments {
  std::vector<std::int32_t> offsets;  // host: 0, ..., B*T (strictly increasing)
  std::int64_t max_length = 0;        // the longest segment
  bool empty() const { return offsets.size() < 2; }
  // True when every segment is a whole row of T tokens (a batch without padding or packing).
  bool one_per_row(std::int64_t T) const;
  // Segments of a left-padded batch from each row's real token count (rows of length T).
  static SequenceSegments left_padded(const std::vector<std::int64_t>& real_tokens, std::int64_t T);
};

struct AttentionInputs {
  at::Tensor full_mask, window_mask;  // boolean [B, 1, T, S] or undefined (is_causal, or a one-token decode step)
  // A static-cache decode step (infer/decode_step.h, one query per row): the same masks as boolean [B, S] rows,
  // which the decode attention kernel (kernels/decode_attention.h) takes on CUDA.
  at::Tensor key_mask, window_key_mask;
  at::Tensor cu_seqlens;              // int32 [segments + 1] on the device: the flash path (training only)
  std::int64_t max_seqlen = 0;
};

// Whether the variable-length flash kernel can run attention for queries of this dtype/device/head size.
bool varlen_flash_supported(const at::Device& device, at::ScalarType dtype, std::int64_t head_dim);

// q [B, Hq, T, D], k/v [B, Hkv, S, D] (Hq a multiple of Hkv); returns [B, T, Hq * D].
// sliding_window: this layer's window (keys k > q - window), if any.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionInputs& in,
                     bool sliding, std::optional<std::int64_t> sliding_window, double dropout);

}  // namespace llmstudio::model
