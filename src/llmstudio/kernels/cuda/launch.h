// Host entry points of the CUDA kernels (kernels/cuda/*.cu): plain pointers, sizes and a stream, no torch types,
// so that nvcc compiles only CUDA headers (fast CI builds). Called by the dispatch in kernels/*.cpp, which owns
// the tensors, the device guard, the stream (at::cuda::getCurrentCUDAStream) and the launch-error check.
// Every kernel computes in float32; 16-byte vector loads when the pointers/strides allow, element loads otherwise.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace llmstudio::kernels::cuda {

enum class DType : int { F32 = 0, BF16 = 1, F16 = 2 };

// RMSNorm over the last dimension of `rows` contiguous rows of D elements: y = (x * rstd).to(X) * w, with rstd
// saved per row (float32). w [D] is float32 or X (wt; a weight in X is read as is: inference needs no float32 copy
// of it, and the float32 product of two X values rounds to the same Y). Type pairs (X, Y): equal, or Y = float32.
struct RmsNormForward {
  const void* x; const void* w; void* y; float* rstd;
  std::int64_t rows; int D; float eps; DType xt, yt; int sm_count;
  DType wt = DType::F32;
};
void rms_norm_forward(const RmsNormForward& a, cudaStream_t stream);

// Gradients: dx [rows, D] in X; when dw_partial is set, per-block partial sums of dw into dw_partial
// [rms_norm_backward_blocks(rows, D, sm_count), D] (float32; the caller sums over the first dimension).
struct RmsNormBackward {
  const void* dy; const void* x; const float* w; const float* rstd; void* dx; float* dw_partial;
  std::int64_t rows; int D; DType xt, yt; int sm_count;
};
int rms_norm_backward_blocks(std::int64_t rows, int D, int sm_count);
void rms_norm_backward(const RmsNormBackward& a, cudaStream_t stream);
int rms_norm_max_dim();  // the backward keeps one float per column in shared memory

// Rotate-half RoPE on x [B, H, T, D] (any strides, last dim contiguous) with cos/sin float32 [B, T, D]:
//   forward:  y1 = x1*c1 - x2*s1, y2 = x2*c2 + x1*s2      (1 = first half of D, 2 = second half)
//   backward: the transpose, dx1 = g1*c1 + g2*s2, dx2 = g2*c2 - g1*s1.
struct Rope {
  const void* in; const float* cos; const float* sin; void* out;
  std::int64_t B, H, T; int D;
  std::int64_t in_stride[3], out_stride[3];  // strides (elements) of dims B, H, T
  DType it, ot; bool backward; int sm_count;
};
void rope(const Rope& a, cudaStream_t stream);

// A decode step's RoPE and KV-cache write in one kernel (one new position per row): q [B, Hq, D] rotated into q_out
// (contiguous [B, Hq, D]); k [B, Hk, D] rotated and v [B, Hk, D] copied into the caches [B, Hk, C, D] (contiguous)
// at column *column (a device int64, read by the kernel). q/k/v by element strides of (row, head), last dim
// contiguous; cos/sin [B, D] with row stride cs_stride, in their own dtype (ct). q/k/v/caches share dtype t. The
// forward formula of `Rope` in float32, rounded once.
struct RopeCacheWrite {
  const void* q; const void* k; const void* v; const void* cos; const void* sin;
  void* q_out; void* k_cache; void* v_cache; const std::int64_t* column;
  std::int64_t B, C; int Hq, Hk, D;
  std::int64_t q_stride[2], k_stride[2], v_stride[2], cs_stride;
  DType t, ct;
};
void rope_cache_write(const RopeCacheWrite& a, cudaStream_t stream);

// SwiGLU on n elements of one dtype: y = silu(g) * u; backward dg = dy*u*silu'(g), du = dy*silu(g).
// The elements are rows of `cols` (n a multiple of it): element (r, c) of gate/up/dgate/dup is at r * stride + c,
// of y/dy at r * cols + c. Flat contiguous tensors: cols = stride = n. Gate and up as the two halves of one
// [rows, 2 * cols] tensor (the fused gate/up projection): up = gate + cols, stride = 2 * cols.
struct SwiGLU {
  const void* gate; const void* up; const void* dy; void* y; void* dgate; void* dup;
  std::int64_t n; DType t; int sm_count;
  std::int64_t cols, stride;
};
void swiglu_forward(const SwiGLU& a, cudaStream_t stream);
void swiglu_backward(const SwiGLU& a, cudaStream_t stream);

// Cross-entropy of `rows` contiguous logit rows of V elements (one dtype T): per row, with lse its logsumexp and
// t = targets[row] (outside [0, V): ignored, loss 0 and a zero gradient row),
//   loss[row] = lse - x[t]                         (float32)
//   grad[row, j] = (exp(x[j] - lse) - [j == t]) * scale[row]   (T)
struct CrossEntropyRows {
  const void* logits; const std::int64_t* targets; const float* scale; void* grad; float* loss;
  std::int64_t rows, V; DType t;
};
void cross_entropy_rows(const CrossEntropyRows& a, cudaStream_t stream);

// Decode attention, one query token per row against a KV cache, split over the keys ("flash-decoding"), GQA:
// q [B, Hq, D] (strides q_stride of dims B, H), k/v [B, Hk, C, D] (strides of dims B, H, C), last dims contiguous,
// one dtype T; key_mask [B, C] contiguous (true = attend); query head h reads kv head h / (Hq / Hk). Writes
//   out[b, h * D + d] = sum_c p[c] v[b, h / G, c, d],  p = softmax over the unmasked c of scale * q[b, h] . k[b, h / G, c]
// (float32 math, out [B, Hq * D] contiguous in T; a row without an unmasked key gives zeros). Two launches: the
// partial softmax of each key chunk into `workspace` (decode_attention_workspace floats), then their combination.
// The launch configuration depends on the sizes and sm_count only (CUDA-graph capturable).
struct DecodeAttention {
  const void* q; const void* k; const void* v; const bool* key_mask; void* out; float* workspace;
  std::int64_t B, Hq, Hk, C; int D; float scale;
  std::int64_t q_stride[2], k_stride[3], v_stride[3];
  DType t; int sm_count;
};
std::int64_t decode_attention_workspace(std::int64_t B, std::int64_t Hq, std::int64_t Hk, std::int64_t C, int D,
                                        int sm_count);
int decode_attention_max_dim();  // D <= this, D % 8 == 0
void decode_attention(const DecodeAttention& a, cudaStream_t stream);

}  // namespace llmstudio::kernels::cuda
