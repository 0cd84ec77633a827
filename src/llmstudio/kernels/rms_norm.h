// RMSNorm as transformers' LlamaRMSNorm: normalise in float32, cast back to x's dtype, multiply by the weight
// (result dtype: torch's promotion of x and weight). One entry point; the backend picks the implementation:
// - rms_norm_reference: the plain libtorch formula (CPU, MPS, and CUDA inputs the kernel does not take);
// - CUDA (LLMS_CUDA_KERNELS): our fused kernel (kernels/cuda/rms_norm.cu), one pass forward saving the per-row
//   rstd (float32), one backward kernel for dx and per-block dw partial sums. Chosen over at::_fused_rms_norm
//   because that op multiplies by the weight in the input dtype before any cast, whereas LlamaRMSNorm rounds the
//   normalised value to x's dtype first and then multiplies in the promoted dtype (bf16 activations with a
//   float32 weight give float32, as the Qwen3 q/k norms under autocast do); ours reproduces that rounding.
#pragma once

#include <ATen/ATen.h>

namespace llmstudio::kernels {

// x [..., D], weight [D].
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace llmstudio::kernels
