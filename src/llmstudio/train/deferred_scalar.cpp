// Deferred host read of a device scalar (see deferred_scalar.h).
#include "llmstudio/train/deferred_scalar.h"

#include <c10/core/impl/VirtualGuardImpl.h>

#include "llmstudio/core/error.h"

namespace llmstudio::train {

void DeferredScalar::put(const at::Tensor& scalar) {
  LLMS_CHECK(scalar.numel() == 1, "DeferredScalar: expected one value, found ", scalar.numel());
  const at::Tensor v = scalar.detach().reshape({}).to(at::kFloat);
  if (!v.is_cuda()) {
    value_ = v;
    done_.reset();
    return;
  }
  value_ = at::empty({}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
  value_.copy_(v, /*non_blocking=*/true);
  if (!done_) done_ = std::make_unique<c10::Event>(v.device().type());
  const c10::impl::VirtualGuardImpl impl(v.device().type());
  done_->record(impl.getStream(v.device()));
}

double DeferredScalar::get() const {
  LLMS_CHECK(value_.defined(), "DeferredScalar: nothing was put");
  if (done_) done_->synchronize();
  return value_.item<double>();
}

}  // namespace llmstudio::train
