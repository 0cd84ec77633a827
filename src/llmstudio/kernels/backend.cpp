// Kernel backend selection (see backend.h).
#include "llmstudio/kernels/backend.h"

#include <atomic>

namespace llmstudio::kernels {
namespace {
std::atomic<bool> g_reference_only{false};
}

bool cuda_kernels_built() {
#if LLMS_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

bool cuda_kernel_applies(const at::Tensor& x) {
  const auto t = x.scalar_type();
  return cuda_kernels_built() && !g_reference_only.load(std::memory_order_relaxed) && x.defined() && x.is_cuda() &&
         (t == at::kFloat || t == at::kBFloat16 || t == at::kHalf) && x.numel() > 0;
}

void set_reference_only(bool on) { g_reference_only.store(on); }
bool reference_only() { return g_reference_only.load(); }

}  // namespace llmstudio::kernels
