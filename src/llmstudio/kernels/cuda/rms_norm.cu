// CUDA RMSNorm (LlamaRMSNorm numerics): forward in one pass over each row saving rstd (float32) per row; backward
// computing dx and, per block, partial sums of dw (the caller sums them). See launch.h for the contract.
#include <algorithm>
#include <initializer_list>

#include "llmstudio/kernels/cuda/common.cuh"

namespace llmstudio::kernels::cuda {
namespace {

// One block per row (grid-stride over rows); each thread handles N-element chunks at columns tid*N + k*blockDim*N.
template <typename X, typename Y, typename W, int N>
__global__ void rms_forward_kernel(const X* __restrict__ x, const W* __restrict__ w, Y* __restrict__ y,
                                   float* __restrict__ rstd, std::int64_t rows, int D, float eps) {
  __shared__ float red[32];
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const X* xr = x + r * D;
    Y* yr = y + r * D;
    float ss = 0.f;
    for (int c = threadIdx.x * N; c < D; c += blockDim.x * N) {
      float f[N];
      load<N>(xr + c, f);
#pragma unroll
      for (int k = 0; k < N; ++k) ss += f[k] * f[k];
    }
    const float rs = rsqrtf(block_sum(ss, red) / static_cast<float>(D) + eps);
    if (threadIdx.x == 0) rstd[r] = rs;
    for (int c = threadIdx.x * N; c < D; c += blockDim.x * N) {
      float f[N], wf[N];
      load<N>(xr + c, f);
      load<N>(w + c, wf);
#pragma unroll
      for (int k = 0; k < N; ++k) f[k] = round_to<X>(f[k] * rs) * wf[k];  // normalise, cast to X, then scale
      store<N>(yr + c, f);
    }
  }
}

// dx = rstd * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * rstd; dw += dy * xhat (xhat rounded to X, as the
// reference multiplies the weight by the X-typed normalised tensor). Each thread owns its columns' dw sums in
// shared memory (no atomics); block b writes its sums to dw_partial[b].
template <typename X, typename Y, int N>
__global__ void rms_backward_kernel(const Y* __restrict__ dy, const X* __restrict__ x, const float* __restrict__ w,
                                    const float* __restrict__ rstd, X* __restrict__ dx, float* __restrict__ dw_partial,
                                    std::int64_t rows, int D) {
  extern __shared__ float acc[];
  __shared__ float red[32];
  if (dw_partial)
    for (int c = threadIdx.x * N; c < D; c += blockDim.x * N)
#pragma unroll
      for (int k = 0; k < N; ++k) acc[c + k] = 0.f;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const X* xr = x + r * D;
    const Y* gr = dy + r * D;
    const float rs = rstd[r];
    float dot = 0.f;
    for (int c = threadIdx.x * N; c < D; c += blockDim.x * N) {
      float f[N], g[N], wf[N];
      load<N>(xr + c, f);
      load<N>(gr + c, g);
      load<N>(w + c, wf);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float xh = f[k] * rs;
        dot += g[k] * wf[k] * xh;
        if (dw_partial) acc[c + k] += g[k] * round_to<X>(xh);
      }
    }
    const float mean = block_sum(dot, red) / static_cast<float>(D);
    for (int c = threadIdx.x * N; c < D; c += blockDim.x * N) {
      float f[N], g[N], wf[N];
      load<N>(xr + c, f);
      load<N>(gr + c, g);
      load<N>(w + c, wf);
#pragma unroll
      for (int k = 0; k < N; ++k) f[k] = rs * (g[k] * wf[k] - f[k] * rs * mean);
      store<N>(dx + r * D + c, f);
    }
  }
  if (dw_partial)
    for (int c = threadIdx.x * N; c < D; c += blockDim.x * N)
#pragma unroll
      for (int k = 0; k < N; ++k) dw_partial[static_cast<std::int64_t>(blockIdx.x) * D + c + k] = acc[c + k];
}

int threads_for(int D, int N) {
  const int chunks = (D + N - 1) / N;
  return std::min(512, std::max(32, (chunks + 31) / 32 * 32));
}

// Vector width for (X, Y): 16 bytes of the narrower type when D and every pointer allow it, else 1.
template <typename X, typename Y> bool can_vectorise(int D, std::initializer_list<std::pair<const void*, int>> ptrs) {
  constexpr int N = std::max(vec_of<X>(), vec_of<Y>());
  if (D % N) return false;
  for (auto [p, size] : ptrs)
    if (p && !aligned(p, static_cast<std::size_t>(size) * N)) return false;
  return true;
}

}  // namespace

int rms_norm_max_dim() { return 12032; }  // float dw sums per block + 32 floats within 48 KiB of shared memory

int rms_norm_backward_blocks(std::int64_t rows, int D, int sm_count) {
  // Half the blocks an SM can hold (2048 threads): enough in flight, few partial rows to sum.
  const int per_sm = std::max(1, 1024 / threads_for(D, 8));
  return static_cast<int>(std::min<std::int64_t>(rows, static_cast<std::int64_t>(sm_count) * per_sm));
}

void rms_norm_forward(const RmsNormForward& a, cudaStream_t stream) {
  dispatch_pair(a.xt, a.yt, [&](auto* xp, auto* yp) {
    using X = std::remove_pointer_t<decltype(xp)>;
    using Y = std::remove_pointer_t<decltype(yp)>;
    constexpr int N = std::max(vec_of<X>(), vec_of<Y>());
    const auto* x = static_cast<const X*>(a.x);
    auto* y = static_cast<Y*>(a.y);
    const int grid = static_cast<int>(std::min<std::int64_t>(a.rows, static_cast<std::int64_t>(a.sm_count) * 16));
    auto launch = [&](const auto* w) {
      using W = std::remove_const_t<std::remove_pointer_t<decltype(w)>>;
      if (can_vectorise<X, Y>(a.D, {{a.x, sizeof(X)}, {a.w, sizeof(W)}, {a.y, sizeof(Y)}}))
        rms_forward_kernel<X, Y, W, N><<<grid, threads_for(a.D, N), 0, stream>>>(x, w, y, a.rstd, a.rows, a.D, a.eps);
      else
        rms_forward_kernel<X, Y, W, 1><<<grid, threads_for(a.D, 1), 0, stream>>>(x, w, y, a.rstd, a.rows, a.D, a.eps);
    };
    if (a.wt == a.xt)
      launch(static_cast<const X*>(a.w));
    else
      launch(static_cast<const float*>(a.w));  // the caller passes float32 otherwise
  });
}

void rms_norm_backward(const RmsNormBackward& a, cudaStream_t stream) {
  dispatch_pair(a.xt, a.yt, [&](auto* xp, auto* yp) {
    using X = std::remove_pointer_t<decltype(xp)>;
    using Y = std::remove_pointer_t<decltype(yp)>;
    constexpr int N = std::max(vec_of<X>(), vec_of<Y>());
    const auto* x = static_cast<const X*>(a.x);
    const auto* dy = static_cast<const Y*>(a.dy);
    auto* dx = static_cast<X*>(a.dx);
    const int grid = rms_norm_backward_blocks(a.rows, a.D, a.sm_count);
    const std::size_t shm = a.dw_partial ? static_cast<std::size_t>(a.D) * sizeof(float) : 0;
    if (can_vectorise<X, Y>(a.D, {{a.x, sizeof(X)}, {a.dy, sizeof(Y)}, {a.w, 4}, {a.dx, sizeof(X)}, {a.dw_partial, 4}}))
      rms_backward_kernel<X, Y, N><<<grid, threads_for(a.D, N), shm, stream>>>(dy, x, a.w, a.rstd, dx, a.dw_partial,
                                                                              a.rows, a.D);
    else
      rms_backward_kernel<X, Y, 1><<<grid, threads_for(a.D, 1), shm, stream>>>(dy, x, a.w, a.rstd, dx, a.dw_partial,
                                                                              a.rows, a.D);
  });
}

}  // namespace llmstudio::kernels::cuda
