// CUDA decode attention (one query token per row against a KV cache), split over the keys ("flash-decoding"), the
// query heads of one kv head (GQA) sharing each K/V read: a partial-softmax kernel per key chunk, then a combine
// kernel per query head. See launch.h for the contract.
#include <algorithm>

#include "llmstudio/kernels/cuda/common.cuh"

namespace llmstudio::kernels::cuda {
namespace {

constexpr int kMaxDim = 256;
constexpr int kWarps = 4;  // warps per partial block
constexpr int kThreads = 32 * kWarps;
constexpr int kCombineThreads = 256;
constexpr std::int64_t kChunkAlign = 64;  // keys per split: a multiple of this
constexpr int kElems = 8;                 // D elements per lane (D <= 32 lanes * 8)
constexpr float kLog2e = 1.4426950408889634f;

// The work split of one call, from the sizes and the multiprocessor count only (no data: graph capturable).
struct Plan {
  int heads;                 // query heads per partial block: 1, 2, 4 or 8 (at least G when G <= 8)
  std::int64_t head_groups;  // partial blocks per kv head and split: ceil(G / heads)
  std::int64_t chunk;        // keys per split
  std::int64_t splits;
};

// Splits for about 4 partial blocks per multiprocessor when the keys allow it (chunks of at least 64 keys, a
// multiple of 64; at most 4096 splits).
Plan plan(std::int64_t B, std::int64_t Hq, std::int64_t Hk, std::int64_t C, int sm_count) {
  const std::int64_t G = Hq / Hk;
  Plan p{};
  p.heads = G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : 8;
  p.head_groups = (G + p.heads - 1) / p.heads;
  const std::int64_t per_split = B * Hk * p.head_groups;
  const std::int64_t target = 4 * static_cast<std::int64_t>(std::max(sm_count, 1));
  const std::int64_t want = std::clamp<std::int64_t>((target + per_split - 1) / per_split, 1, 4096);
  const std::int64_t chunk = (C + want - 1) / want;
  p.chunk = std::max(kChunkAlign, (chunk + kChunkAlign - 1) / kChunkAlign * kChunkAlign);
  p.splits = std::max<std::int64_t>(1, (C + p.chunk - 1) / p.chunk);
  return p;
}

struct Shape {
  std::int64_t qs[2], ks[3], vs[3];
  std::int64_t Hq, C, chunk, splits, head_groups;
  int G, D;
  int L;       // lanes per key (a power of 2, at most 32): lane j of a group holds vectors j, j + L, ...
  int chunks;  // vectors of N elements per row, D / N
  float scale; // scale * log2(e): scores in base 2
};

// 2^x by the special function unit (relative error ~2^-22; 2^-inf = 0).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

template <typename T, int N> __device__ __forceinline__ void load_row(const T* row, bool on, int j, int L, int chunks,
                                                                      float (&f)[kElems]) {
  constexpr int P = kElems / N;
#pragma unroll
  for (int p = 0; p < P; ++p) {
    const int c = j + p * L;
    float t[N];
    if (on && c < chunks) {
      load<N>(row + c * N, t);
    } else {
#pragma unroll
      for (int n = 0; n < N; ++n) t[n] = 0.f;
    }
#pragma unroll
    for (int n = 0; n < N; ++n) f[p * N + n] = t[n];
  }
}

// Block (split, kv head * head_groups + head group, b): the GB query heads of one head group over the keys
// [split * chunk, min(C, (split + 1) * chunk)). Each group of L lanes takes one key at a time (U in flight),
// round-robin over the block's groups, and keeps an online softmax (running max m, sum l, acc[D], base 2) per
// query head; groups merge by warp shuffles, warps through shared memory. Writes per (b, query head, split) the
// unnormalised acc [D] and (m, l) (m = -inf, l = 0, acc = 0 when the chunk has no unmasked key).
template <typename T, int N, int GB>
__global__ void __launch_bounds__(kThreads) decode_partial_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                                  const T* __restrict__ v,
                                                                  const bool* __restrict__ mask,
                                                                  float* __restrict__ ws_acc,
                                                                  float* __restrict__ ws_ml, Shape s) {
  constexpr int U = GB >= 8 ? 2 : 4;
  extern __shared__ float smem[];
  const std::int64_t split = blockIdx.x, b = blockIdx.z;
  const std::int64_t hk = blockIdx.y / s.head_groups;
  const int h0 = static_cast<int>(blockIdx.y % s.head_groups) * GB;  // first query head within the G of hk
  const int nh = min(GB, s.G - h0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int L = s.L, per_warp = 32 / L, gi = lane / L, j = lane % L;
  const int groups = kWarps * per_warp;

  float qf[GB][kElems];
#pragma unroll
  for (int g = 0; g < GB; ++g) {
    const T* qr = q + b * s.qs[0] + (hk * s.G + h0 + g) * s.qs[1];
    load_row<T, N>(qr, g < nh, j, L, s.chunks, qf[g]);
#pragma unroll
    for (int e = 0; e < kElems; ++e) qf[g][e] *= s.scale;
  }

  float m[GB], l[GB], acc[GB][kElems];
#pragma unroll
  for (int g = 0; g < GB; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < kElems; ++e) acc[g][e] = 0.f;
  }

  const T* kb = k + b * s.ks[0] + hk * s.ks[1];
  const T* vb = v + b * s.vs[0] + hk * s.vs[1];
  const bool* mb = mask + b * s.C;
  const std::int64_t start = split * s.chunk, end = s.C < start + s.chunk ? s.C : start + s.chunk;
  // The mask bytes of each iteration's keys are read one iteration ahead (with q for the first), so that the K/V
  // loads, skipped for masked keys (unwritten cache columns cost no bandwidth), wait on no mask load.
  bool next[U];
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const std::int64_t key = start + warp * per_warp + gi + u * groups;
    next[u] = key < end && mb[key];
  }
  // The loop bound is uniform over the warp (its first group's key): every lane reaches the shuffles.
  for (std::int64_t base = start + warp * per_warp; base < end; base += U * groups) {
    float kf[U][kElems], vf[U][kElems];
    bool ok[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const std::int64_t key = base + gi + u * groups;
      ok[u] = next[u];
      load_row<T, N>(kb + key * s.ks[2], ok[u], j, L, s.chunks, kf[u]);
      load_row<T, N>(vb + key * s.vs[2], ok[u], j, L, s.chunks, vf[u]);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const std::int64_t key = base + U * groups + gi + u * groups;
      next[u] = key < end && mb[key];
    }
    float sc[U][GB];
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int g = 0; g < GB; ++g) {
        float d = 0.f;
#pragma unroll
        for (int e = 0; e < kElems; ++e) d = fmaf(qf[g][e], kf[u][e], d);
        sc[u][g] = d;
      }
    }
    // Sums over the group's lanes, all U * GB at each step (independent shuffles back to back).
    for (int o = L >> 1; o > 0; o >>= 1) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int g = 0; g < GB; ++g) sc[u][g] += __shfl_xor_sync(0xffffffffu, sc[u][g], o);
      }
    }
#pragma unroll
    for (int g = 0; g < GB; ++g) {  // branch-free: masked keys get p = 0; m stays -inf until an unmasked key
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < U; ++u) mx = fmaxf(mx, ok[u] ? sc[u][g] : -INFINITY);
      const float ref = mx == -INFINITY ? 0.f : mx;
      const float corr = ex2(m[g] - ref);  // 0 while m = -inf
      float p[U];
#pragma unroll
      for (int u = 0; u < U; ++u) p[u] = ok[u] ? ex2(sc[u][g] - ref) : 0.f;
      float sum = l[g] * corr;
#pragma unroll
      for (int u = 0; u < U; ++u) sum += p[u];
      l[g] = sum;
#pragma unroll
      for (int e = 0; e < kElems; ++e) {
        float a = acc[g][e] * corr;
#pragma unroll
        for (int u = 0; u < U; ++u) a = fmaf(p[u], vf[u][e], a);
        acc[g][e] = a;
      }
      m[g] = mx;
    }
  }

  // Merge the groups of a warp: lane j of every group holds the same elements.
  for (int o = L; o < 32; o <<= 1) {
#pragma unroll
    for (int g = 0; g < GB; ++g) {
      const float mo = __shfl_xor_sync(0xffffffffu, m[g], o), lo = __shfl_xor_sync(0xffffffffu, l[g], o);
      const float mx = fmaxf(m[g], mo);
      const float a = mx == -INFINITY ? 0.f : ex2(m[g] - mx), c = mx == -INFINITY ? 0.f : ex2(mo - mx);
      l[g] = l[g] * a + lo * c;
#pragma unroll
      for (int e = 0; e < kElems; ++e) {
        const float ao = __shfl_xor_sync(0xffffffffu, acc[g][e], o);
        acc[g][e] = acc[g][e] * a + ao * c;
      }
      m[g] = mx;
    }
  }

  // Merge the warps: shared acc [kWarps][GB][D], m [kWarps][GB], l [kWarps][GB].
  const int D = s.D;
  float* sacc = smem;
  float* sm = smem + kWarps * GB * D;
  float* sl = sm + kWarps * GB;
  if (gi == 0) {
#pragma unroll
    for (int g = 0; g < GB; ++g) {
#pragma unroll
      for (int p = 0; p < kElems / N; ++p) {
        const int c = j + p * L;
        if (c < s.chunks) {
#pragma unroll
          for (int n = 0; n < N; ++n) sacc[(warp * GB + g) * D + c * N + n] = acc[g][p * N + n];
        }
      }
      if (j == 0) {
        sm[warp * GB + g] = m[g];
        sl[warp * GB + g] = l[g];
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nh * D; i += kThreads) {
    const int g = i / D, d = i % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sm[w * GB + g]);
    float a = 0.f, sum = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float c = exp2f(sm[w * GB + g] - mx);
        a += c * sacc[(w * GB + g) * D + d];
        sum += c * sl[w * GB + g];
      }
    }
    const std::int64_t row = ((b * s.Hq + hk * s.G + h0 + g) * s.splits + split);
    ws_acc[row * D + d] = a;
    if (d == 0) {
      ws_ml[2 * row] = mx;
      ws_ml[2 * row + 1] = sum;
    }
  }
}

__device__ __forceinline__ float block_max(float v, float* red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warps = blockDim.x >> 5, lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) red[wid] = v;
  __syncthreads();
  float t = lane < warps ? red[lane] : -INFINITY;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}

// Block b * Hq + h: M = max_s m_s, w_s = exp2(m_s - M), out = sum_s w_s acc_s / sum_s w_s l_s (zeros when no split
// saw an unmasked key). Shared memory: w [splits], then per-slice partial sums [R][D]: the threads take 4
// consecutive elements of D each (D / 4 threads per split), R = kCombineThreads / (D / 4) splits at a time.
template <typename T>
__global__ void __launch_bounds__(kCombineThreads) decode_combine_kernel(const float* __restrict__ ws_acc,
                                                                         const float* __restrict__ ws_ml,
                                                                         T* __restrict__ out, int splits, int D) {
  extern __shared__ float cs[];
  __shared__ float red[32];
  const std::int64_t row = blockIdx.x;
  const float* ml = ws_ml + row * splits * 2;
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < splits; s += kCombineThreads) mx = fmaxf(mx, ml[2 * s]);
  mx = block_max(mx, red);
  float den = 0.f;
  for (int s = threadIdx.x; s < splits; s += kCombineThreads) {
    const float w = mx == -INFINITY ? 0.f : exp2f(ml[2 * s] - mx);
    cs[s] = w;
    den += w * ml[2 * s + 1];
  }
  den = block_sum(den, red);
  __syncthreads();
  const int dq = D / 4, R = kCombineThreads / dq, r = threadIdx.x / dq, c = threadIdx.x % dq;
  float* part = cs + splits;
  if (r < R) {
    float a[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
    for (int s = r; s < splits; s += R) {
      const float w = cs[s];
      float x[4];
      load<4>(ws_acc + (row * splits + s) * D + 4 * c, x);
#pragma unroll
      for (int n = 0; n < 4; ++n) a[n] = fmaf(w, x[n], a[n]);
    }
#pragma unroll
    for (int n = 0; n < 4; ++n) part[r * D + 4 * c + n] = a[n];
  }
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += kCombineThreads) {
    float t = 0.f;
    for (int i = 0; i < R; ++i) t += part[i * D + d];
    out[row * D + d] = from_f<T>(den > 0.f ? t / den : 0.f);
  }
}

template <typename T, int N>
void launch_partial(int heads, dim3 grid, const T* q, const T* k, const T* v, const bool* mask, float* acc, float* ml,
                    const Shape& s, cudaStream_t stream) {
  const std::size_t shm = sizeof(float) * static_cast<std::size_t>(kWarps * heads * (s.D + 2));
  switch (heads) {
    case 1: decode_partial_kernel<T, N, 1><<<grid, kThreads, shm, stream>>>(q, k, v, mask, acc, ml, s); break;
    case 2: decode_partial_kernel<T, N, 2><<<grid, kThreads, shm, stream>>>(q, k, v, mask, acc, ml, s); break;
    case 4: decode_partial_kernel<T, N, 4><<<grid, kThreads, shm, stream>>>(q, k, v, mask, acc, ml, s); break;
    default: decode_partial_kernel<T, N, 8><<<grid, kThreads, shm, stream>>>(q, k, v, mask, acc, ml, s); break;
  }
}

}  // namespace

int decode_attention_max_dim() { return kMaxDim; }

std::int64_t decode_attention_workspace(std::int64_t B, std::int64_t Hq, std::int64_t Hk, std::int64_t C, int D,
                                        int sm_count) {
  return B * Hq * plan(B, Hq, Hk, C, sm_count).splits * (D + 2);
}

void decode_attention(const DecodeAttention& a, cudaStream_t stream) {
  const Plan p = plan(a.B, a.Hq, a.Hk, a.C, a.sm_count);
  dispatch_one(a.t, [&](auto* tp) {
    using T = std::remove_pointer_t<decltype(tp)>;
    constexpr int N = vec_of<T>();
    bool vec = a.D % N == 0 && aligned(a.q, 16) && aligned(a.k, 16) && aligned(a.v, 16);
    for (int d = 0; d < 2; ++d) vec = vec && a.q_stride[d] % N == 0;
    for (int d = 0; d < 3; ++d) vec = vec && a.k_stride[d] % N == 0 && a.v_stride[d] % N == 0;
    Shape s{};
    for (int d = 0; d < 2; ++d) s.qs[d] = a.q_stride[d];
    for (int d = 0; d < 3; ++d) s.ks[d] = a.k_stride[d], s.vs[d] = a.v_stride[d];
    s.Hq = a.Hq;
    s.C = a.C;
    s.chunk = p.chunk;
    s.splits = p.splits;
    s.head_groups = p.head_groups;
    s.G = static_cast<int>(a.Hq / a.Hk);
    s.D = a.D;
    s.chunks = a.D / (vec ? N : 1);
    s.L = 1;
    while (s.L < s.chunks && s.L < 32) s.L *= 2;
    s.scale = a.scale * kLog2e;
    float* acc = a.workspace;
    float* ml = a.workspace + a.B * a.Hq * p.splits * a.D;
    const dim3 grid(static_cast<unsigned>(p.splits), static_cast<unsigned>(a.Hk * p.head_groups),
                    static_cast<unsigned>(a.B));
    const auto* q = static_cast<const T*>(a.q);
    const auto* k = static_cast<const T*>(a.k);
    const auto* v = static_cast<const T*>(a.v);
    if (vec)
      launch_partial<T, N>(p.heads, grid, q, k, v, a.key_mask, acc, ml, s, stream);
    else
      launch_partial<T, 1>(p.heads, grid, q, k, v, a.key_mask, acc, ml, s, stream);
    const int R = kCombineThreads / (a.D / 4);
    const std::size_t shm = sizeof(float) * static_cast<std::size_t>(p.splits + R * a.D);
    decode_combine_kernel<T><<<static_cast<unsigned>(a.B * a.Hq), kCombineThreads, shm, stream>>>(
        acc, ml, static_cast<T*>(a.out), static_cast<int>(p.splits), a.D);
  });
}

}  // namespace llmstudio::kernels::cuda
