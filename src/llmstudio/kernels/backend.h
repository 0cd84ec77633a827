// What the kernels dispatch shares: whether this build has the CUDA kernels (LLMS_CUDA_KERNELS, the only backend
// #if of the module lives in backend.cpp), and the tensor checks that decide whether a CUDA kernel may take a call.
#pragma once

#include <ATen/ATen.h>

namespace llmstudio::kernels {

// True when this build compiled the CUDA kernels (CMake option LLMS_CUDA_KERNELS).
bool cuda_kernels_built();

// True when x is a CUDA tensor, the kernels are built, and x's dtype is float32, bfloat16 or float16.
bool cuda_kernel_applies(const at::Tensor& x);

// Force the reference implementations everywhere (tests and benchmarks compare the two on one device).
void set_reference_only(bool on);
bool reference_only();

}  // namespace llmstudio::kernels
