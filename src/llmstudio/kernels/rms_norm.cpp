// RMSNorm dispatch, reference and CUDA autograd function (see rms_norm.h).
#include "llmstudio/kernels/rms_norm.h"

#include <ATen/core/grad_mode.h>

#include "llmstudio/kernels/backend.h"
#if LLMS_CUDA_KERNELS
#include "llmstudio/kernels/cuda/glue.h"
#endif

namespace llmstudio::kernels {

at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps) {
  // As transformers: normalise in float32, cast back, then scale.
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * at::rsqrt(var + eps)).to(x.scalar_type());
}

#if LLMS_CUDA_KERNELS
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The forward kernel on x (rows of D in memory order) with w [D] float32 or in x's dtype; the per-row rstd into
// *rstd.
at::Tensor forward_rows(const at::Tensor& x, const at::Tensor& w, double eps, at::ScalarType out_dtype, at::Tensor* rstd) {
  const c10::cuda::CUDAGuard guard(x.device());
  const std::int64_t D = x.size(-1), rows = x.numel() / D;
  at::Tensor y = at::empty_strided(x.sizes(), x.strides(), x.options().dtype(out_dtype));
  *rstd = at::empty({rows}, x.options().dtype(at::kFloat));
  cuda::RmsNormForward a{x.data_ptr(), w.data_ptr(), y.data_ptr(), rstd->data_ptr<float>(), rows, static_cast<int>(D),
                         static_cast<float>(eps), cuda::to_dtype(x.scalar_type()), cuda::to_dtype(out_dtype),
                         cuda::sm_count(), cuda::to_dtype(w.scalar_type())};
  cuda::rms_norm_forward(a, cuda::stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

// Inputs: x (rows of D in memory order), w float32 [D]. Saves x, w and the per-row rstd.
struct RmsNormFunction : torch::autograd::Function<RmsNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, double eps,
                            at::ScalarType out_dtype) {
    at::Tensor rstd;
    const at::Tensor y = forward_rows(x, w, eps, out_dtype, &rstd);
    ctx->save_for_backward({x, w, rstd});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &rstd = saved[2];
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor dy = cuda::with_strides_of(grads[0], x);
    const std::int64_t D = x.size(-1), rows = x.numel() / D;
    const int sms = cuda::sm_count();
    at::Tensor dx = at::empty_strided(x.sizes(), x.strides(), x.options());
    at::Tensor partial;
    if (ctx->needs_input_grad(1))
      partial = at::empty({cuda::rms_norm_backward_blocks(rows, static_cast<int>(D), sms), D},
                          x.options().dtype(at::kFloat));
    cuda::rms_norm_backward({dy.data_ptr(), x.data_ptr(), w.data_ptr<float>(), rstd.data_ptr<float>(), dx.data_ptr(),
                             partial.defined() ? partial.data_ptr<float>() : nullptr, rows, static_cast<int>(D),
                             cuda::to_dtype(x.scalar_type()), cuda::to_dtype(dy.scalar_type()), sms},
                            cuda::stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return {dx, partial.defined() ? partial.sum(0) : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

bool cuda_takes(const at::Tensor& x, const at::Tensor& weight) {
  if (!cuda_kernel_applies(x) || !weight.defined() || weight.device() != x.device() || weight.dim() != 1 ||
      weight.size(0) != x.size(-1) || x.size(-1) > cuda::rms_norm_max_dim() || !cuda::kernel_dtype(weight.scalar_type()))
    return false;
  const at::ScalarType out = at::result_type(x, weight);
  return out == x.scalar_type() || out == at::kFloat;
}

}  // namespace
#endif

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
#if LLMS_CUDA_KERNELS
  if (cuda_takes(x, weight)) {
    const at::Tensor xr = cuda::dense_rows(x) ? x : x.contiguous();
    const at::ScalarType out = at::result_type(x, weight);
    // Without autograd (inference) a weight in x's dtype is read as is: no float32 copy per call.
    if (!at::GradMode::is_enabled() && weight.scalar_type() == x.scalar_type() && weight.is_contiguous()) {
      at::Tensor rstd;
      return forward_rows(xr, weight, eps, out, &rstd);
    }
    return RmsNormFunction::apply(xr, weight.to(at::kFloat).contiguous(), eps, out);
  }
#endif
  return rms_norm_reference(x, weight, eps);
}

}  // namespace llmstudio::kernels
