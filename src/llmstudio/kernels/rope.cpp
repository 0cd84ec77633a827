// RoPE dispatch, reference and CUDA autograd function (see rope.h).
#include "llmstudio/kernels/rope.h"

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
