// SwiGLU, silu(gate) * up (the Llama MLP's activation), through one entry point; the backend picks the
// implementation:
// - swiglu_reference: at::silu(gate) * up (CPU, MPS, and CUDA calls the kernel does not take: mixed dtypes,
//   broadcasting);
// - CUDA (LLMS_CUDA_KERNELS): kernels/cuda/swiglu.cu, forward in one pass, backward giving dgate and dup in one
//   pass (saves gate and up only).
#pragma once

#include <ATen/ATen.h>

namespace llmstudio::kernels {

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);
at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up);

}  // namespace llmstudio::kernels
