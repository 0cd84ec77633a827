// Device helpers shared by the kernels of kernels/cuda/: float conversions (round-to-nearest-even, as torch),
// N-element aligned vector loads/stores (16 bytes for the narrowest type), a block-wide sum, and the host-side
// dtype dispatch and alignment checks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "llmstudio/kernels/cuda/launch.h"

namespace llmstudio::kernels::cuda {

using bf16 = __nv_bfloat16;
using f16 = __half;

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(f16 v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ f16 from_f<f16>(float v) { return __float2half_rn(v); }

// Rounds v to T and back (the value a T tensor would hold).
template <typename T> __device__ __forceinline__ float round_to(float v) { return to_f(from_f<T>(v)); }

template <typename T, int N> struct alignas(sizeof(T) * N) Vec { T v[N]; };

template <int N, typename T> __device__ __forceinline__ void load(const T* p, float (&f)[N]) {
  const Vec<T, N> a = *reinterpret_cast<const Vec<T, N>*>(p);
#pragma unroll
  for (int k = 0; k < N; ++k) f[k] = to_f(a.v[k]);
}

__device__ __forceinline__ unsigned bits_of(float v) { return __float_as_uint(v); }
__device__ __forceinline__ unsigned bits_of(bf16 v) { return __bfloat16_as_ushort(v); }
__device__ __forceinline__ unsigned bits_of(f16 v) { return __half_as_ushort(v); }

// Stores N elements as 32-bit words packed by hand, written 16 bytes at a time when there are 4 or more words (a
// struct or uint4 copy compiled to 2- or 4-byte stores in the RMSNorm kernels). p must be a global-memory pointer.
template <int N, typename T> __device__ __forceinline__ void store(T* p, const float (&f)[N]) {
  constexpr int per_word = 4 / static_cast<int>(sizeof(T));
  constexpr int words = N / per_word;
  if constexpr (N % per_word != 0 || words % 4 != 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) p[k] = from_f<T>(f[k]);
  } else {
    unsigned w[words];
#pragma unroll
    for (int i = 0; i < words; ++i) {
      w[i] = 0;
#pragma unroll
      for (int k = 0; k < per_word; ++k) w[i] |= bits_of(from_f<T>(f[i * per_word + k])) << (16 * k);
    }
#pragma unroll
    for (int i = 0; i < words / 4; ++i)  // explicit 16-byte store: the compiler split the uint4 copy in some kernels
      asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(reinterpret_cast<uint4*>(p) + i), "r"(w[4 * i]),
                   "r"(w[4 * i + 1]), "r"(w[4 * i + 2]), "r"(w[4 * i + 3])
                   : "memory");
  }
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total. `red` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warps = blockDim.x >> 5;
  if (warps == 1) return v;
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  __syncthreads();  // the previous call's readers are done with `red`
  if (lane == 0) red[wid] = v;
  __syncthreads();
  float t = lane < warps ? red[lane] : 0.f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

inline bool aligned(const void* p, std::size_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// Calls f(static_cast<A*>(nullptr), static_cast<B*>(nullptr)) for the type pair (a, b): equal types, or one of them
// float32. Returns false for other pairs.
template <typename F> bool dispatch_pair(DType a, DType b, F&& f) {
  if (a == b) {
    switch (a) {
      case DType::F32: f(static_cast<float*>(nullptr), static_cast<float*>(nullptr)); return true;
      case DType::BF16: f(static_cast<bf16*>(nullptr), static_cast<bf16*>(nullptr)); return true;
      case DType::F16: f(static_cast<f16*>(nullptr), static_cast<f16*>(nullptr)); return true;
    }
  }
  if (b == DType::F32 && a == DType::BF16) { f(static_cast<bf16*>(nullptr), static_cast<float*>(nullptr)); return true; }
  if (b == DType::F32 && a == DType::F16) { f(static_cast<f16*>(nullptr), static_cast<float*>(nullptr)); return true; }
  if (a == DType::F32 && b == DType::BF16) { f(static_cast<float*>(nullptr), static_cast<bf16*>(nullptr)); return true; }
  if (a == DType::F32 && b == DType::F16) { f(static_cast<float*>(nullptr), static_cast<f16*>(nullptr)); return true; }
  return false;
}

template <typename F> bool dispatch_one(DType a, F&& f) {
  switch (a) {
    case DType::F32: f(static_cast<float*>(nullptr)); return true;
    case DType::BF16: f(static_cast<bf16*>(nullptr)); return true;
    case DType::F16: f(static_cast<f16*>(nullptr)); return true;
  }
  return false;
}

// Elements per 16-byte access of T.
template <typename T> constexpr int vec_of() { return 16 / static_cast<int>(sizeof(T)); }

}  // namespace llmstudio::kernels::cuda
