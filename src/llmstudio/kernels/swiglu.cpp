// SwiGLU dispatch, reference and CUDA autograd function (see swiglu.h).
#include "llmstudio/kernels/swiglu.h"

#include "llmstudio/kernels/backend.h"
#if LLMS_CUDA_KERNELS
#include "llmstudio/kernels/cuda/glue.h"
#endif

namespace llmstudio::kernels {

at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up) { return at::silu(gate) * up; }

#if LLMS_CUDA_KERNELS
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Inputs: gate and up contiguous, same shape and dtype. Saves both.
struct SwiGLUFunction : torch::autograd::Function<SwiGLUFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    const c10::cuda::CUDAGuard guard(gate.device());
    at::Tensor y = at::empty_like(gate, at::MemoryFormat::Contiguous);
    cuda::swiglu_forward({gate.data_ptr(), up.data_ptr(), nullptr, y.data_ptr(), nullptr, nullptr, gate.numel(),
                          cuda::to_dtype(gate.scalar_type()), cuda::sm_count()},
                         cuda::stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    ctx->save_for_backward({gate, up});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const c10::cuda::CUDAGuard guard(gate.device());
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor dgate = at::empty_like(gate, at::MemoryFormat::Contiguous);
    at::Tensor dup = at::empty_like(up, at::MemoryFormat::Contiguous);
    cuda::swiglu_backward({gate.data_ptr(), up.data_ptr(), dy.data_ptr(), nullptr, dgate.data_ptr(), dup.data_ptr(),
                           gate.numel(), cuda::to_dtype(gate.scalar_type()), cuda::sm_count()},
                          cuda::stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return {dgate, dup};
  }
};

}  // namespace
#endif

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
#if LLMS_CUDA_KERNELS
  if (cuda_kernel_applies(gate) && up.device() == gate.device() && up.scalar_type() == gate.scalar_type() &&
      up.sizes() == gate.sizes())
    return SwiGLUFunction::apply(gate.contiguous(), up.contiguous());
#endif
  return swiglu_reference(gate, up);
}

}  // namespace llmstudio::kernels
