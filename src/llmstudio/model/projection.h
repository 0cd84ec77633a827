// Fused projections: the linear layers of a decoder block that read the same input (q/k/v, gate/up), or one
// alone (o, down), computed as one GEMM over their stacked weights, with their LoRA adapters as one low-rank pair
// (A stacked, B block-diagonal), in one autograd function whose backward
// - computes the input gradient as one GEMM over the stacked weights with the adapters' share added in its
//   epilogue (no separate gradient-accumulation kernels for an input read by several projections), and
// - reads the input once for all adapters' A gradients.
// The result equals cat(l.forward(x) for l in group) up to float rounding (one float32 accumulation instead of
// several rounded sums). Used for mixed-precision (autocast) runs on CUDA, where these costs matter; everything
// else takes Linear::forward.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "llmstudio/model/causal_lm.h"

namespace llmstudio::model {

using ProjectionGroup = std::vector<const Linear*>;

// True when `group` can run fused on x: no bias, no DoRA, no LoRA dropout while training, equal input sizes,
// x on CUDA under autocast (the training path of mixed precision), and the kernels not forced to their
// references (kernels::set_reference_only, which benchmarks and kernel checks use for the plain path).
bool fused_projection_applies(const ProjectionGroup& group, const at::Tensor& x, bool training);

// x [..., in] -> [..., sum of the group's output sizes], the outputs side by side in group order. Callers check
// fused_projection_applies first; the function itself works on any device (tests compare it with Linear::forward
// on the CPU). output_needed false (a checkpointed block recomputed for its backward pass, whose output value is
// never read): with adapters, the output is left uninitialised and its GEMMs skipped; the gradients are unchanged.
at::Tensor fused_projection(const ProjectionGroup& group, const at::Tensor& x, bool output_needed = true);

// The group's weights as one [sum out, in] tensor: a view when they sit one after another in one buffer (see
// stack_weight_storage) and none needs a gradient, else a concatenation (autograd-tracked).
at::Tensor stacked_weight(const ProjectionGroup& group);

// Inference (grad mode off, not training) on plain projections: the group's weights as one [sum out, in] view when
// no member has a bias or an adapter and the weights sit one after another in one buffer (stack_weight_storage);
// undefined otherwise (the caller runs the members one by one). One GEMM instead of one per member, no copy.
at::Tensor inference_stacked_weight(const ProjectionGroup& group, bool training);

// Moves the group's weights into one buffer, each weight a view of its rows (no extra memory), so that
// stacked_weight needs no copy. The weights keep their values, dtype, device and requires_grad.
void stack_weight_storage(const std::vector<Linear*>& group);

}  // namespace llmstudio::model
