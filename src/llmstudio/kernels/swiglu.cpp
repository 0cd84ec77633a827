// SwiGLU dispatch, reference and CUDA autograd function (see swiglu.h).
#include "llmstudio/kernels/swiglu.h"

#include "llmstudio/core/error.h"
#include "llmstudio/kernels/backend.h"
#if LLMS_CUDA_KERNELS
#include "llmstudio/kernels/cuda/glue.h"
#endif

namespace llmstudio::kernels {

at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up) { return at::silu(gate) * up; }

at::Tensor swiglu_packed_reference(const at::Tensor& gate_up) {
  const std::int64_t I = gate_up.size(-1) / 2;
  return swiglu_reference(gate_up.narrow(-1, 0, I), gate_up.narrow(-1, I, I));
}

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
                          cuda::to_dtype(gate.scalar_type()), cuda::sm_count(), gate.numel(), gate.numel()},
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
                           gate.numel(), cuda::to_dtype(gate.scalar_type()), cuda::sm_count(), gate.numel(), gate.numel()},
                          cuda::stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return {dgate, dup};
  }
};

// Input: gate_up [..., 2I] contiguous, gate the first half of each row. Saves it; the gradient is one [..., 2I]
// tensor (no concatenation of dgate and dup for the fused projection's backward).
struct PackedSwiGLUFunction : torch::autograd::Function<PackedSwiGLUFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate_up) {
    const c10::cuda::CUDAGuard guard(gate_up.device());
    const std::int64_t I = gate_up.size(-1) / 2;
    std::vector<std::int64_t> shape = gate_up.sizes().vec();
    shape.back() = I;
    at::Tensor y = at::empty(shape, gate_up.options());
    const char* g = static_cast<const char*>(gate_up.data_ptr());
    cuda::swiglu_forward({g, g + I * gate_up.element_size(), nullptr, y.data_ptr(), nullptr, nullptr, y.numel(),
                          cuda::to_dtype(gate_up.scalar_type()), cuda::sm_count(), I, 2 * I},
                         cuda::stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    ctx->save_for_backward({gate_up});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor()};
    const at::Tensor gate_up = ctx->get_saved_variables()[0];
    const c10::cuda::CUDAGuard guard(gate_up.device());
    const std::int64_t I = gate_up.size(-1) / 2;
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor d = at::empty_like(gate_up, at::MemoryFormat::Contiguous);
    const std::size_t half = static_cast<std::size_t>(I * gate_up.element_size());
    const char* g = static_cast<const char*>(gate_up.data_ptr());
    char* dg = static_cast<char*>(d.data_ptr());
    cuda::swiglu_backward({g, g + half, dy.data_ptr(), nullptr, dg, dg + half, dy.numel(),
                           cuda::to_dtype(gate_up.scalar_type()), cuda::sm_count(), I, 2 * I},
                          cuda::stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return {d};
  }
};

}  // namespace
#endif

at::Tensor swiglu_packed(const at::Tensor& gate_up) {
  LLMS_CHECK(gate_up.dim() >= 1 && gate_up.size(-1) % 2 == 0, "swiglu_packed: the last dimension must hold gate and up ",
             "halves (even size), found ", gate_up.sizes());
#if LLMS_CUDA_KERNELS
  if (cuda_kernel_applies(gate_up)) return PackedSwiGLUFunction::apply(gate_up.contiguous());
#endif
  return swiglu_packed_reference(gate_up);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
#if LLMS_CUDA_KERNELS
  if (cuda_kernel_applies(gate) && up.device() == gate.device() && up.scalar_type() == gate.scalar_type() &&
      up.sizes() == gate.sizes())
    return SwiGLUFunction::apply(gate.contiguous(), up.contiguous());
#endif
  return swiglu_reference(gate, up);
}

}  // namespace llmstudio::kernels
