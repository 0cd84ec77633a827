// SwiGLU, silu(gate) * up (the Llama MLP's activation), through one entry point; the backend picks the
// implementation:
// - swiglu_reference: at::silu(gate) * up (CPU, MPS, and CUDA calls the kernel does not take: mixed dtypes,
//   broadcasting);
// - CUDA (LLMS_CUDA_KERNELS): kernels/cuda/swiglu.cu, forward in one pass, backward giving dgate and dup in one
//   pass (saves gate and up only); swiglu_packed reads both halves of one fused row.
#pragma once

#include <ATen/ATen.h>

namespace llmstudio::kernels {

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);
at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up);

// The same on the fused gate/up projection's output, gate_up [..., 2I] (gate = first half of the last dimension,
// up = second): returns [..., I]; on CUDA the backward writes one [..., 2I] gradient.
at::Tensor swiglu_packed(const at::Tensor& gate_up);
at::Tensor swiglu_packed_reference(const at::Tensor& gate_up);

}  // namespace llmstudio::kernels
