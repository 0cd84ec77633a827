// CUDA rotate-half RoPE, forward and backward (the transposed rotation), on strided [B, H, T, D] tensors whose last
// dimension is contiguous, with float32 cos/sin [B, T, D]. See launch.h for the contract.
#include <algorithm>

#include "llmstudio/kernels/cuda/common.cuh"

namespace llmstudio::kernels::cuda {
namespace {

struct RopeShape {
  std::int64_t H, T; int D;
  std::int64_t is[3], os[3];
};

// One thread per N-element chunk of the first half of a row, paired with the same chunk of the second half.
template <typename I, typename O, int N>
__global__ void rope_kernel(const I* __restrict__ in, const float* __restrict__ cos, const float* __restrict__ sin,
                            O* __restrict__ out, std::int64_t items, RopeShape s, bool backward) {
  const int half = s.D / 2, chunks = half / N;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < items;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % chunks) * N;
    std::int64_t row = i / chunks;
    const std::int64_t t = row % s.T;
    row /= s.T;
    const std::int64_t h = row % s.H, b = row / s.H;
    const I* ir = in + b * s.is[0] + h * s.is[1] + t * s.is[2];
    O* orow = out + b * s.os[0] + h * s.os[1] + t * s.os[2];
    const std::int64_t cs = (b * s.T + t) * s.D;
    float x1[N], x2[N], c1[N], c2[N], s1[N], s2[N];
    load<N>(ir + c, x1);
    load<N>(ir + half + c, x2);
    load<N>(cos + cs + c, c1);
    load<N>(cos + cs + half + c, c2);
    load<N>(sin + cs + c, s1);
    load<N>(sin + cs + half + c, s2);
    float y1[N], y2[N];
#pragma unroll
    for (int k = 0; k < N; ++k) {
      if (backward) {
        y1[k] = x1[k] * c1[k] + x2[k] * s2[k];
        y2[k] = x2[k] * c2[k] - x1[k] * s1[k];
      } else {
        y1[k] = x1[k] * c1[k] - x2[k] * s1[k];
        y2[k] = x2[k] * c2[k] + x1[k] * s2[k];
      }
    }
    store<N>(orow + c, y1);
    store<N>(orow + half + c, y2);
  }
}

// One block per (row, head) of q, k and v together (heads 0..Hq-1 q, then Hk of k, then Hk of v), one thread per
// element pair (d, d + D/2).
template <typename T, typename CT>
__global__ void rope_cache_write_kernel(RopeCacheWrite a) {
  const int heads = a.Hq + 2 * a.Hk, half = a.D / 2;
  const std::int64_t b = blockIdx.x / heads;
  const int h = static_cast<int>(blockIdx.x % heads);
  const std::int64_t col = *a.column;
  const CT* cs = static_cast<const CT*>(a.cos) + b * a.cs_stride;
  const CT* sn = static_cast<const CT*>(a.sin) + b * a.cs_stride;
  const T* in;
  T* out;
  bool rotate = true;
  if (h < a.Hq) {
    in = static_cast<const T*>(a.q) + b * a.q_stride[0] + h * a.q_stride[1];
    out = static_cast<T*>(a.q_out) + (b * a.Hq + h) * a.D;
  } else if (h < a.Hq + a.Hk) {
    const int g = h - a.Hq;
    in = static_cast<const T*>(a.k) + b * a.k_stride[0] + g * a.k_stride[1];
    out = static_cast<T*>(a.k_cache) + ((b * a.Hk + g) * a.C + col) * a.D;
  } else {
    const int g = h - a.Hq - a.Hk;
    in = static_cast<const T*>(a.v) + b * a.v_stride[0] + g * a.v_stride[1];
    out = static_cast<T*>(a.v_cache) + ((b * a.Hk + g) * a.C + col) * a.D;
    rotate = false;
  }
  for (int d = threadIdx.x; d < half; d += blockDim.x) {
    const float x1 = to_f(in[d]), x2 = to_f(in[d + half]);
    if (!rotate) {
      out[d] = in[d];
      out[d + half] = in[d + half];
      continue;
    }
    const float c1 = to_f(cs[d]), c2 = to_f(cs[d + half]), s1 = to_f(sn[d]), s2 = to_f(sn[d + half]);
    out[d] = from_f<T>(x1 * c1 - x2 * s1);
    out[d + half] = from_f<T>(x2 * c2 + x1 * s2);
  }
}

}  // namespace

void rope_cache_write(const RopeCacheWrite& a, cudaStream_t stream) {
  const int heads = a.Hq + 2 * a.Hk;
  const int threads = std::min(128, std::max(32, (a.D / 2 + 31) / 32 * 32));
  dispatch_pair(a.t, a.ct, [&](auto* tp, auto* cp) {
    using T = std::remove_pointer_t<decltype(tp)>;
    using CT = std::remove_pointer_t<decltype(cp)>;
    rope_cache_write_kernel<T, CT><<<static_cast<unsigned>(a.B * heads), threads, 0, stream>>>(a);
  });
}

void rope(const Rope& a, cudaStream_t stream) {
  dispatch_pair(a.it, a.ot, [&](auto* ip, auto* op) {
    using I = std::remove_pointer_t<decltype(ip)>;
    using O = std::remove_pointer_t<decltype(op)>;
    constexpr int N = std::max(vec_of<I>(), vec_of<O>());
    const RopeShape s{a.H, a.T, a.D, {a.in_stride[0], a.in_stride[1], a.in_stride[2]},
                      {a.out_stride[0], a.out_stride[1], a.out_stride[2]}};
    bool vec = (a.D / 2) % N == 0 && aligned(a.in, sizeof(I) * N) && aligned(a.out, sizeof(O) * N) &&
               aligned(a.cos, 4 * N) && aligned(a.sin, 4 * N);
    for (int d = 0; d < 3; ++d) vec = vec && a.in_stride[d] % N == 0 && a.out_stride[d] % N == 0;
    const int n = vec ? N : 1;
    const std::int64_t items = a.B * a.H * a.T * (a.D / 2 / n);
    const int threads = 256;
    const int grid = static_cast<int>(std::min<std::int64_t>((items + threads - 1) / threads,
                                                             static_cast<std::int64_t>(a.sm_count) * 8));
    const auto* in = static_cast<const I*>(a.in);
    auto* out = static_cast<O*>(a.out);
    if (vec)
      rope_kernel<I, O, N><<<grid, threads, 0, stream>>>(in, a.cos, a.sin, out, items, s, a.backward);
    else
      rope_kernel<I, O, 1><<<grid, threads, 0, stream>>>(in, a.cos, a.sin, out, items, s, a.backward);
  });
}

}  // namespace llmstudio::kernels::cuda
