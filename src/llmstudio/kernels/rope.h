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

// A decode step with a static KV cache (one new position per row, T = 1): returns q rotated, [B, Hq, 1, D] (a
// contiguous [B, 1, Hq, D] underneath), and writes k rotated and v into k_cache / v_cache [B, Hk, C, D] at the
// column given by `column` (int64 [1] on the device). q/k/v [B, H, 1, D] with the last dim contiguous; cos/sin
// [B, 1, 1, D]. On CUDA one kernel (inference only: no autograd); elsewhere apply_rope and index_copy_. Values as
// apply_rope's (the result in q's dtype: cos/sin of another dtype are converted first by the reference).
at::Tensor rope_cache_write(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& k_cache, const at::Tensor& v_cache,
                            const at::Tensor& column);
at::Tensor rope_cache_write_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& k_cache,
                                      const at::Tensor& v_cache, const at::Tensor& column);

}  // namespace llmstudio::kernels
