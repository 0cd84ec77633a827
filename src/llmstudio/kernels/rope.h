// Rotate-half rotary embedding, x*cos + rotate_half(x)*sin (transformers' apply_rotary_pos_emb), through one entry
// point; the backend picks the implementation:
// - apply_rope_reference: the plain libtorch formula (CPU, MPS, and CUDA calls the kernel does not take);
// - CUDA (LLMS_CUDA_KERNELS): one kernel (kernels/cuda/rope.cu) for the forward and the backward (the transposed
//   rotation), reading strided x (the transposed q/k views) without a copy. The result dtype is torch's promotion
//   of x, cos and sin, as the reference.
#pragma once

#include <ATen/ATen.h>

namespace llmstudio::kernels {

// x [B, H, T, D]; cos and sin [B, 1, T, D] (model::rope_cos_sin), or broadcastable to x.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
at::Tensor apply_rope_reference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace llmstudio::kernels
