// CUDA cross-entropy rows for kernels/linear_cross_entropy (eager gradients): one block per row of a chunk's logits
// reads the row twice (an online max/sum-of-exp pass, then the gradient pass) and writes its gradient once, in the
// logits' dtype, with no float32 copy of the logits: the log_softmax, exp, scatter and scale kernels of the plain
// path in one. See launch.h for the contract.
#include <cmath>

#include "llmstudio/kernels/cuda/common.cuh"

namespace llmstudio::kernels::cuda {
namespace {

constexpr int kThreads = 1024;

// Running max m and sum s of exp(x - m).
struct MaxSum {
  float m, s;
};

__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.f};
  return {m, a.s * __expf(a.m - m) + b.s * __expf(b.m - m)};
}

// Merge over the block; every thread gets the result. `red` holds 32 pairs.
__device__ MaxSum block_merge(MaxSum v, MaxSum* red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    v = merge(v, {__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)});
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) red[wid] = v;
  __syncthreads();
  MaxSum t = lane < warps ? red[lane] : MaxSum{-INFINITY, 0.f};
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    t = merge(t, {__shfl_xor_sync(0xffffffffu, t.m, o), __shfl_xor_sync(0xffffffffu, t.s, o)});
  return t;
}

template <typename T, int N>
__global__ void __launch_bounds__(kThreads) ce_rows_kernel(const T* __restrict__ logits, const std::int64_t* __restrict__ targets,
                                                           const float* __restrict__ scale, T* __restrict__ grad,
                                                           float* __restrict__ loss, std::int64_t V) {
  __shared__ MaxSum red[32];
  const std::int64_t row = blockIdx.x;
  const T* x = logits + row * V;
  T* g = grad + row * V;
  MaxSum acc{-INFINITY, 0.f};
  for (std::int64_t j = static_cast<std::int64_t>(threadIdx.x) * N; j < V; j += static_cast<std::int64_t>(kThreads) * N) {
    float f[N];
    load<N>(x + j, f);
    float m = f[0];
#pragma unroll
    for (int k = 1; k < N; ++k) m = fmaxf(m, f[k]);
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < N; ++k) s += __expf(f[k] - m);
    acc = merge(acc, {m, s});
  }
  const MaxSum total = block_merge(acc, red);
  const float lse = total.m + __logf(total.s);
  const std::int64_t t = targets[row];
  const bool valid = t >= 0 && t < V;
  const float sc = valid ? scale[row] : 0.f;
  for (std::int64_t j = static_cast<std::int64_t>(threadIdx.x) * N; j < V; j += static_cast<std::int64_t>(kThreads) * N) {
    float f[N];
    load<N>(x + j, f);
#pragma unroll
    for (int k = 0; k < N; ++k) f[k] = (__expf(f[k] - lse) - (j + k == t ? 1.f : 0.f)) * sc;
    store<N>(g + j, f);
  }
  if (threadIdx.x == 0) loss[row] = valid ? lse - to_f(x[t]) : 0.f;
}

}  // namespace

void cross_entropy_rows(const CrossEntropyRows& a, cudaStream_t stream) {
  if (a.rows == 0) return;
  dispatch_one(a.t, [&](auto* tp) {
    using T = std::remove_pointer_t<decltype(tp)>;
    constexpr int N = vec_of<T>();
    const auto* x = static_cast<const T*>(a.logits);
    auto* g = static_cast<T*>(a.grad);
    const auto grid = static_cast<unsigned>(a.rows);
    if (a.V % N == 0 && aligned(x, 16) && aligned(g, 16))
      ce_rows_kernel<T, N><<<grid, kThreads, 0, stream>>>(x, a.targets, a.scale, g, a.loss, a.V);
    else
      ce_rows_kernel<T, 1><<<grid, kThreads, 0, stream>>>(x, a.targets, a.scale, g, a.loss, a.V);
  });
}

}  // namespace llmstudio::kernels::cuda
