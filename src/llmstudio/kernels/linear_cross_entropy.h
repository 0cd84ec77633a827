// Fused lm_head + cross-entropy: loss = sum_i w_i * CE(hidden_i W^T, label_i), computed over chunks of rows so
// that the full [N, V] logits (and their float32 copy and gradient) are never materialized; only one chunk's
// [rows, V] logits exist at a time. Owns the chunked autograd Function (forward + backward, no host sync) and the
// plain reference (at::linear -> float -> cross_entropy) that CPU/MPS use and that the tests compare against.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace llmstudio::kernels {

enum class LceImpl {
  Auto,       // chunked on CUDA, reference elsewhere
  Reference,  // at::linear -> float32 -> cross_entropy (materializes [N, V])
  Chunked,    // the chunked autograd Function (any device)
};

enum class LceGrad {
  Auto,       // Eager, except Recompute for float16 compute (unscaled float16 gradients would underflow)
  Eager,      // gradients computed in forward (when grad is needed), scaled by grad_out in backward: 2 lm_head
              // matmuls per chunk (3 when the weight trains) instead of 3 (4)
  Recompute,  // backward recomputes each chunk's logits (keeps hidden, weight and the per-row logsumexp)
};

struct LinearCrossEntropyOptions {
  LceImpl impl = LceImpl::Auto;
  LceGrad grad = LceGrad::Auto;
  std::int64_t chunk_rows = 0;  // rows per chunk; 0 = auto (a chunk's float32 logits about chunk_bytes)
  std::int64_t chunk_bytes = std::int64_t{256} << 20;
};

// hidden [N, H] (position i predicts labels[i]); weight [V, H] (lm_head, tied or not, trainable or frozen);
// labels [N] int64 with -100 = ignored; token_weights [N] float32 (0 on ignored rows; see train/loss.cpp for the
// token- and sample-averaged weights). Returns the float32 scalar sum_i w_i * CE_i, differentiable w.r.t. hidden
// and weight. Under autocast for hidden's device, hidden and weight are cast to the autocast dtype (as at::linear);
// logits are computed in that compute dtype, the logsumexp, target logit and logit gradients in float32.
// The weight's gradient is accumulated over chunks in the compute dtype (addmm with beta=1: float32 accumulation
// inside each chunk's GEMM, one rounding per chunk; the reference's gradient is in that dtype as well).
at::Tensor linear_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                const at::Tensor& token_weights, const LinearCrossEntropyOptions& options = {});

// The plain formula: (cross_entropy(at::linear(hidden, weight).float(), labels, none, -100) * token_weights).sum().
at::Tensor linear_cross_entropy_reference(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                          const at::Tensor& token_weights);

// Whether LceImpl::Auto runs the chunked Function on `device` (CUDA) rather than the reference.
bool linear_cross_entropy_chunked_on(const at::Device& device);

// Rows per chunk for a vocabulary of `vocab` (options.chunk_rows when > 0), at least 1 and at most n.
std::int64_t linear_cross_entropy_chunk_rows(std::int64_t n, std::int64_t vocab,
                                             const LinearCrossEntropyOptions& options);

}  // namespace llmstudio::kernels
