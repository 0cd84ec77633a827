// RoPE dispatch, reference and CUDA autograd function (see rope.h).
#include "llmstudio/kernels/rope.h"

#include <ATen/core/grad_mode.h>

#include "llmstudio/kernels/backend.h"
#if LLMS_CUDA_KERNELS
#include "llmstudio/kernels/cuda/glue.h"
#endif

namespace llmstudio::kernels {

at::Tensor apply_rope_reference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const std::int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

at::Tensor rope_cache_write_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& k_cache,
                                      const at::Tensor& v_cache, const at::Tensor& column) {
  k_cache.index_copy_(2, column, apply_rope(k, cos, sin).to(k_cache.scalar_type()));
  v_cache.index_copy_(2, column, v.to(v_cache.scalar_type()));
  return apply_rope(q, cos, sin).to(q.scalar_type());
}

#if LLMS_CUDA_KERNELS
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// in [B, H, T, D] (last dim contiguous) rotated into a new tensor of dtype `out_dtype` with in's layout.
at::Tensor rotate(const at::Tensor& in, const at::Tensor& cos, const at::Tensor& sin, at::ScalarType out_dtype,
                  bool backward) {
  // Dense inputs keep their layout; others (q/k as column slices of a fused projection) get the [B, T, H, D]
  // layout of a projection's output, which attention kernels take without a copy.
  const at::TensorOptions opts = in.options().dtype(out_dtype);
  at::Tensor out = cuda::dense_rows(in) ? at::empty_strided(in.sizes(), in.strides(), opts)
                                        : at::empty({in.size(0), in.size(2), in.size(1), in.size(3)}, opts).transpose(1, 2);
  cuda::Rope a{in.data_ptr(), cos.data_ptr<float>(), sin.data_ptr<float>(), out.data_ptr(),
               in.size(0), in.size(1), in.size(2), static_cast<int>(in.size(3)),
               {in.stride(0), in.stride(1), in.stride(2)}, {out.stride(0), out.stride(1), out.stride(2)},
               cuda::to_dtype(in.scalar_type()), cuda::to_dtype(out_dtype), backward, cuda::sm_count()};
  cuda::rope(a, cuda::stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor last_dim_contiguous(const at::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); }

// Inputs: x [B, H, T, D], cos/sin float32 contiguous [B, T, D]. Saves cos and sin only.
struct RopeFunction : torch::autograd::Function<RopeFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                            at::ScalarType out_dtype) {
    const c10::cuda::CUDAGuard guard(x.device());
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["x_dtype"] = static_cast<std::int64_t>(x.scalar_type());
    return rotate(last_dim_contiguous(x), cos, sin, out_dtype, /*backward=*/false);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const auto saved = ctx->get_saved_variables();
    const auto x_dtype = static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt());
    const c10::cuda::CUDAGuard guard(grads[0].device());
    return {rotate(last_dim_contiguous(grads[0]), saved[0], saved[1], x_dtype, /*backward=*/true), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

// cos/sin as float32 contiguous [B, T, D] for x [B, H, T, D]; undefined when t has another shape.
at::Tensor table(const at::Tensor& t, const at::Tensor& x) {
  const std::int64_t B = x.size(0), T = x.size(2), D = x.size(3);
  if (t.requires_grad() || t.device() != x.device() || !cuda::kernel_dtype(t.scalar_type())) return {};
  at::Tensor u = t;
  while (u.dim() < 4) u = u.unsqueeze(0);
  if (u.dim() != 4 || u.size(1) != 1 || (u.size(0) != 1 && u.size(0) != B) || (u.size(2) != 1 && u.size(2) != T) ||
      u.size(3) != D)
    return {};
  return u.to(at::kFloat).expand({B, 1, T, D}).reshape({B, T, D}).contiguous();
}

}  // namespace
#endif

#if LLMS_CUDA_KERNELS
namespace {

// The kernel's preconditions (launch.h, RopeCacheWrite): shapes, one dtype for q/k/v/caches, dense caches.
bool rope_cache_write_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                              const at::Tensor& sin, const at::Tensor& kc, const at::Tensor& vc, const at::Tensor& col) {
  if (!cuda_kernel_applies(q) || at::GradMode::is_enabled() || q.dim() != 4 || k.dim() != 4 || v.dim() != 4 ||
      kc.dim() != 4 || vc.dim() != 4 || q.size(2) != 1 || q.size(3) % 2 != 0)
    return false;
  const std::int64_t B = q.size(0), Hk = k.size(1), D = q.size(3);
  for (const at::Tensor* t : {&k, &v, &kc, &vc})
    if (t->scalar_type() != q.scalar_type() || t->device() != q.device()) return false;
  if (k.sizes() != v.sizes() || k.size(0) != B || k.size(2) != 1 || k.size(3) != D || kc.sizes() != vc.sizes() ||
      kc.size(0) != B || kc.size(1) != Hk || kc.size(3) != D || !kc.is_contiguous() || !vc.is_contiguous())
    return false;
  for (const at::Tensor* t : {&q, &k, &v})
    if (t->stride(3) != 1) return false;
  for (const at::Tensor* t : {&cos, &sin})
    if (t->dim() != 4 || t->size(0) != B || t->size(1) != 1 || t->size(2) != 1 || t->size(3) != D ||
        t->stride(3) != 1 || t->device() != q.device() || !cuda::kernel_pair(q.scalar_type(), t->scalar_type()))
      return false;
  return cos.stride(0) == sin.stride(0) && cos.scalar_type() == sin.scalar_type() &&
         at::promote_types(q.scalar_type(), cos.scalar_type()) == q.scalar_type() && col.numel() == 1 &&
         col.scalar_type() == at::kLong && col.device() == q.device() && col.is_contiguous();
}

}  // namespace
#endif

at::Tensor rope_cache_write(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& k_cache, const at::Tensor& v_cache,
                            const at::Tensor& column) {
#if LLMS_CUDA_KERNELS
  if (rope_cache_write_applies(q, k, v, cos, sin, k_cache, v_cache, column)) {
    const c10::cuda::CUDAGuard guard(q.device());
    const std::int64_t B = q.size(0), Hq = q.size(1), Hk = k.size(1), D = q.size(3);
    at::Tensor out = at::empty({B, 1, Hq, D}, q.options());
    cuda::RopeCacheWrite a{q.data_ptr(), k.data_ptr(), v.data_ptr(), cos.data_ptr(), sin.data_ptr(),
                           out.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), column.data_ptr<std::int64_t>(),
                           B, k_cache.size(2), static_cast<int>(Hq), static_cast<int>(Hk), static_cast<int>(D),
                           {q.stride(0), q.stride(1)}, {k.stride(0), k.stride(1)}, {v.stride(0), v.stride(1)},
                           cos.stride(0), cuda::to_dtype(q.scalar_type()), cuda::to_dtype(cos.scalar_type())};
    cuda::rope_cache_write(a, cuda::stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out.transpose(1, 2);
  }
#endif
  return rope_cache_write_reference(q, k, v, cos, sin, k_cache, v_cache, column);
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
#if LLMS_CUDA_KERNELS
  if (cuda_kernel_applies(x) && x.dim() == 4 && x.size(3) % 2 == 0) {
    const at::ScalarType out = at::promote_types(at::result_type(x, cos), sin.scalar_type());
    at::Tensor c = table(cos, x), s = table(sin, x);
    if (c.defined() && s.defined() && cuda::kernel_pair(x.scalar_type(), out))
      return RopeFunction::apply(x, c, s, out);
  }
#endif
  return apply_rope_reference(x, cos, sin);
}

}  // namespace llmstudio::kernels
