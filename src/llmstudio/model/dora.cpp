// DoRA on a Linear (see dora.h).
#include "llmstudio/model/dora.h"

namespace llmstudio::model {
namespace {

// W + scaling * B A in float32; `delta_detached` as PEFT's forward, which detaches B A for the norm only.
at::Tensor adapted_weight(const Linear& lin, bool delta_detached) {
  at::Tensor delta = at::matmul(lin.lora_b, lin.lora_a);
  if (delta_detached) delta = delta.detach();
  return lin.weight.to(lin.lora_a.scalar_type()) + lin.lora_scaling * delta;
}

}  // namespace

at::Tensor dora_weight_norm(const Linear& lin) {
  return at::linalg_vector_norm(adapted_weight(lin, true), 2, at::IntArrayRef{1}).detach();
}

at::Tensor dora_output(const Linear& lin, const at::Tensor& xd, const at::Tensor& base, bool dropped) {
  const at::Tensor scale = lin.lora_magnitude / dora_weight_norm(lin);  // [out], broadcast over the last dim
  const at::Tensor lora = at::linear(at::linear(xd, lin.lora_a), lin.lora_b);
  at::Tensor base_term;
  if (dropped)
    base_term = at::linear(xd, lin.weight.to(xd.scalar_type()));
  else
    base_term = (lin.bias.defined() ? base - lin.bias : base).to(xd.scalar_type());
  at::Tensor dora = (scale - 1) * base_term + scale * lora * lin.lora_scaling;
  return (base.to(dora.scalar_type()) + dora).to(base.scalar_type());
}

at::Tensor dora_merged_weight(const Linear& lin) {
  at::Tensor adapted = adapted_weight(lin, true);
  at::Tensor norm = at::linalg_vector_norm(adapted, 2, at::IntArrayRef{1});
  at::Tensor factor = (lin.lora_magnitude.to(at::kFloat) / norm).view({-1, 1});
  return (factor * adapted).to(lin.weight.scalar_type());
}

}  // namespace llmstudio::model
