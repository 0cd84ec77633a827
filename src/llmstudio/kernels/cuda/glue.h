// Torch-side glue for the CUDA kernels (included by the dispatch files only when LLMS_CUDA_KERNELS): dtype
// mapping, the current stream and multiprocessor count of a tensor's device, and layout helpers.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/autograd/custom_function.h>

#include "llmstudio/core/error.h"
#include "llmstudio/kernels/cuda/launch.h"

namespace llmstudio::kernels::cuda {

inline bool kernel_dtype(at::ScalarType t) { return t == at::kFloat || t == at::kBFloat16 || t == at::kHalf; }

inline DType to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::F32;
    case at::kBFloat16: return DType::BF16;
    case at::kHalf: return DType::F16;
    default: fail("kernels: dtype ", t, " has no CUDA kernel; expected float32, bfloat16 or float16");
  }
}

// The pair of dtypes a kernel takes: equal, or the second float32 (launch.h).
inline bool kernel_pair(at::ScalarType a, at::ScalarType b) {
  return kernel_dtype(a) && kernel_dtype(b) && (a == b || b == at::kFloat || a == at::kFloat);
}

inline int sm_count() { return at::cuda::getCurrentDeviceProperties()->multiProcessorCount; }

inline cudaStream_t stream() { return at::cuda::getCurrentCUDAStream().stream(); }

// t with ref's strides (a copy when they differ), so that two tensors walk memory in the same row order.
inline at::Tensor with_strides_of(const at::Tensor& t, const at::Tensor& ref) {
  if (t.strides() == ref.strides()) return t;
  return at::empty_strided(ref.sizes(), ref.strides(), t.options()).copy_(t);
}

// True when the memory of t is a sequence of rows of its last dimension (dense, no overlap, last stride 1).
inline bool dense_rows(const at::Tensor& t) {
  return t.dim() >= 1 && t.stride(-1) == 1 && t.is_non_overlapping_and_dense();
}

}  // namespace llmstudio::kernels::cuda
