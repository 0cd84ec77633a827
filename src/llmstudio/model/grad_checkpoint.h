// Gradient checkpointing of decoder blocks (architecture.gradient_checkpointing): a custom autograd Function
// (torch::autograd::Function) that runs a block under no-grad in the forward pass, keeping only the block's
// input, and runs it again with grad in the backward pass to get the gradients of its input and parameters.
// libtorch C++ has no torch.utils.checkpoint; this does what its reentrant variant does. The
// recomputation sees the same random numbers (the device generator's state is saved in forward and restored,
// then put back, in backward, when the block draws any, e.g. LoRA dropout) and the same autocast settings.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "llmstudio/model/causal_lm.h"

namespace llmstudio::model {

using BlockFn = std::function<at::Tensor(const at::Tensor&)>;

// block(h), with activations recomputed in backward. `params` are every tensor the block uses that may need a
// gradient (its weights/adapters requiring grad); gradients reach them as in the plain call. Call it only with
// grad mode on (otherwise call block(h) directly). `preserve_rng`: the block draws random numbers (dropout).
at::Tensor checkpointed(const BlockFn& block, const at::Tensor& h, const std::vector<at::Tensor>& params,
                        bool preserve_rng);

// True while this thread recomputes a checkpointed block for its backward pass: the block's output value is then
// never read (only its autograd graph is), so the block may skip computing what only feeds its output.
bool recomputing_block();

// The tensors of a decoder layer that require grad: every tensor of its layer schema (norm weights, projection
// weights and biases) and the LoRA/DoRA adapters of its projections.
std::vector<at::Tensor> trainable_tensors(const LayerSchema& schema, const DecoderLayer& layer);

// Whether the layer draws random numbers in training mode (LoRA dropout > 0 on one of its projections).
bool layer_uses_dropout(const LayerSchema& schema, const DecoderLayer& layer);

}  // namespace llmstudio::model
