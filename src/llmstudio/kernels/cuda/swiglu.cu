// CUDA SwiGLU, y = silu(gate) * up, forward and backward (dgate and dup in one pass), on rows of one dtype (flat
// contiguous tensors, or gate and up as the halves of one fused row). See launch.h for the contract.
#include <algorithm>
#include <initializer_list>

#include "llmstudio/kernels/cuda/common.cuh"

namespace llmstudio::kernels::cuda {
namespace {

__device__ __forceinline__ float sigmoid(float g) { return 1.f / (1.f + expf(-g)); }

// Element offset of a chunk's first element in the strided gate/up rows (chunks never cross a row: N divides cols).
struct Rows {
  std::int64_t cols, stride;
  __device__ __forceinline__ std::int64_t at(std::int64_t e) const { return (e / cols) * stride + e % cols; }
};

// Forward rounds silu(g) to T before the product, as the reference (silu, then mul, each in T).
template <typename T, int N>
__global__ void swiglu_forward_kernel(const T* __restrict__ g, const T* __restrict__ u, T* __restrict__ y,
                                      std::int64_t chunks, Rows rows) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < chunks;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t o = rows.at(i * N);
    float gf[N], uf[N];
    load<N>(g + o, gf);
    load<N>(u + o, uf);
#pragma unroll
    for (int k = 0; k < N; ++k) gf[k] = round_to<T>(gf[k] * sigmoid(gf[k])) * uf[k];
    store<N>(y + i * N, gf);
  }
}

template <typename T, int N>
__global__ void swiglu_backward_kernel(const T* __restrict__ g, const T* __restrict__ u, const T* __restrict__ dy,
                                       T* __restrict__ dg, T* __restrict__ du, std::int64_t chunks, Rows rows) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < chunks;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t o = rows.at(i * N);
    float gf[N], uf[N], df[N], a[N], b[N];
    load<N>(g + o, gf);
    load<N>(u + o, uf);
    load<N>(dy + i * N, df);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const float s = sigmoid(gf[k]);
      a[k] = df[k] * uf[k] * s * (1.f + gf[k] * (1.f - s));  // d silu(g) / dg = s * (1 + g * (1 - s))
      b[k] = df[k] * round_to<T>(gf[k] * s);
    }
    store<N>(dg + o, a);
    store<N>(du + o, b);
  }
}

template <typename T> bool vectorisable(const SwiGLU& a) {
  constexpr int N = vec_of<T>();
  for (const void* p : std::initializer_list<const void*>{a.gate, a.up, a.dy, a.y, a.dgate, a.dup})
    if (p && !aligned(p, 16)) return false;
  return a.cols % N == 0 && a.stride % N == 0;
}

int grid_for(std::int64_t chunks, int sm_count) {
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>((chunks + 255) / 256,
                                                                          static_cast<std::int64_t>(sm_count) * 8)));
}

}  // namespace

void swiglu_forward(const SwiGLU& a, cudaStream_t stream) {
  dispatch_one(a.t, [&](auto* tp) {
    using T = std::remove_pointer_t<decltype(tp)>;
    constexpr int N = vec_of<T>();
    const auto* g = static_cast<const T*>(a.gate);
    const auto* u = static_cast<const T*>(a.up);
    auto* y = static_cast<T*>(a.y);
    const Rows rows{a.cols, a.stride};
    if (vectorisable<T>(a))
      swiglu_forward_kernel<T, N><<<grid_for(a.n / N, a.sm_count), 256, 0, stream>>>(g, u, y, a.n / N, rows);
    else
      swiglu_forward_kernel<T, 1><<<grid_for(a.n, a.sm_count), 256, 0, stream>>>(g, u, y, a.n, rows);
  });
}

void swiglu_backward(const SwiGLU& a, cudaStream_t stream) {
  dispatch_one(a.t, [&](auto* tp) {
    using T = std::remove_pointer_t<decltype(tp)>;
    constexpr int N = vec_of<T>();
    const auto* g = static_cast<const T*>(a.gate);
    const auto* u = static_cast<const T*>(a.up);
    const auto* dy = static_cast<const T*>(a.dy);
    auto* dg = static_cast<T*>(a.dgate);
    auto* du = static_cast<T*>(a.dup);
    const Rows rows{a.cols, a.stride};
    if (vectorisable<T>(a))
      swiglu_backward_kernel<T, N><<<grid_for(a.n / N, a.sm_count), 256, 0, stream>>>(g, u, dy, dg, du, a.n / N, rows);
    else
      swiglu_backward_kernel<T, 1><<<grid_for(a.n, a.sm_count), 256, 0, stream>>>(g, u, dy, dg, du, a.n, rows);
  });
}

}  // namespace llmstudio::kernels::cuda
