// Decode attention dispatch, reference and CUDA launch (see decode_attention.h).
#include "llmstudio/kernels/decode_attention.h"

#include <ATen/core/grad_mode.h>

#include <limits>

#include "llmstudio/core/error.h"
#include "llmstudio/kernels/backend.h"
#if LLMS_CUDA_KERNELS
#include "llmstudio/kernels/cuda/glue.h"
#endif

namespace llmstudio::kernels {
namespace {

void check_shapes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask) {
  LLMS_CHECK(q.dim() == 4 && q.size(2) == 1, "decode_attention: q must be [B, Hq, 1, D], found ", q.sizes());
  const std::int64_t B = q.size(0), Hq = q.size(1), D = q.size(3);
  LLMS_CHECK(k.dim() == 4 && k.size(0) == B && k.size(3) == D, "decode_attention: k must be [B, Hk, C, D] = [", B,
             ", Hk, C, ", D, "], found ", k.sizes());
  LLMS_CHECK(v.sizes() == k.sizes(), "decode_attention: v must have k's shape ", k.sizes(), ", found ", v.sizes());
  const std::int64_t Hk = k.size(1), C = k.size(2);
  LLMS_CHECK(Hk > 0 && Hq % Hk == 0, "decode_attention: the query heads must be a multiple of the kv heads, found ",
             Hq, " query heads and ", Hk, " kv heads");
  LLMS_CHECK(key_mask.dim() == 2 && key_mask.size(0) == B && key_mask.size(1) == C &&
                 key_mask.scalar_type() == at::kBool,
             "decode_attention: key_mask must be bool [B, C] = [", B, ", ", C, "], found ", key_mask.scalar_type(), " ",
             key_mask.sizes());
}

}  // namespace

at::Tensor decode_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& key_mask, double scale) {
  check_shapes(q, k, v, key_mask);
  const std::int64_t B = q.size(0), Hq = q.size(1), D = q.size(3), Hk = k.size(1), C = k.size(2);
  const at::ScalarType ct = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // Query head h = kv head * G + g: q as [B, Hk, G, D] against k, v [B, Hk, C, D] (no repeated K/V).
  const at::Tensor qg = q.to(ct).reshape({B, Hk, Hq / Hk, D});
  at::Tensor scores = at::matmul(qg, k.to(ct).transpose(-2, -1)).mul_(scale);  // [B, Hk, G, C]
  const at::Tensor keep = key_mask.view({B, 1, 1, C});
  scores.masked_fill_(keep.logical_not(), -std::numeric_limits<double>::infinity());
  // A row without an unmasked key: softmax gives NaN; zeros instead (as the kernel).
  const at::Tensor probs = at::softmax(scores, -1).masked_fill_(keep.any(-1, /*keepdim=*/true).logical_not(), 0.0);
  return at::matmul(probs, v.to(ct)).reshape({B, 1, Hq * D}).to(q.scalar_type());
}

bool decode_attention_kernel_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& key_mask) {
#if LLMS_CUDA_KERNELS
  if (!cuda_kernel_applies(q) || !k.defined() || !v.defined() || !key_mask.defined()) return false;
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || key_mask.dim() != 2) return false;
  const std::int64_t B = q.size(0), Hq = q.size(1), D = q.size(3), Hk = k.size(1), C = k.size(2);
  if (q.size(2) != 1 || k.size(0) != B || k.size(3) != D || v.sizes() != k.sizes() || Hk == 0 || Hq % Hk != 0 ||
      C == 0 || key_mask.size(0) != B || key_mask.size(1) != C)
    return false;
  if (D % 8 != 0 || D > cuda::decode_attention_max_dim()) return false;
  if (k.scalar_type() != q.scalar_type() || v.scalar_type() != q.scalar_type() || key_mask.scalar_type() != at::kBool)
    return false;
  if (k.device() != q.device() || v.device() != q.device() || key_mask.device() != q.device()) return false;
  if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) return false;
  if (B > 65535 || Hq > 65535) return false;  // grid dimensions z and y
  if (at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) return false;
  return true;
#else
  (void)q, (void)k, (void)v, (void)key_mask;
  return false;
#endif
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                            double scale) {
  check_shapes(q, k, v, key_mask);
#if LLMS_CUDA_KERNELS
  if (decode_attention_kernel_applies(q, k, v, key_mask)) {
    const c10::cuda::CUDAGuard guard(q.device());
    const std::int64_t B = q.size(0), Hq = q.size(1), D = q.size(3), Hk = k.size(1), C = k.size(2);
    const at::Tensor mask = key_mask.contiguous();
    at::Tensor out = at::empty({B, 1, Hq * D}, q.options());
    const int sms = cuda::sm_count();
    const at::Tensor ws = at::empty({cuda::decode_attention_workspace(B, Hq, Hk, C, static_cast<int>(D), sms)},
                                    q.options().dtype(at::kFloat));
    cuda::decode_attention({q.data_ptr(), k.data_ptr(), v.data_ptr(), mask.data_ptr<bool>(), out.data_ptr(),
                            ws.data_ptr<float>(), B, Hq, Hk, C, static_cast<int>(D), static_cast<float>(scale),
                            {q.stride(0), q.stride(1)}, {k.stride(0), k.stride(1), k.stride(2)},
                            {v.stride(0), v.stride(1), v.stride(2)}, cuda::to_dtype(q.scalar_type()), sms},
                           cuda::stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
  }
#endif
  return decode_attention_reference(q, k, v, key_mask, scale);
}

}  // namespace llmstudio::kernels
