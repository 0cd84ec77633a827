// Rotary position embeddings as transformers computes them: inverse frequencies per rope type
// (default, linear, llama3), cos/sin for position ids (computed in float32), and the rotate-half application.
#pragma once

#include <ATen/ATen.h>

#include "llmstudio/model/model_config.h"

namespace llmstudio::model {

// Inverse frequencies [head_dim/2], float32 on CPU.
at::Tensor rope_inv_freq(const RopeConfig& rope, std::int64_t head_dim);

// cos and sin [B, 1, T, head_dim] in `dtype` for position ids [B, T] (int64).
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids,
                                               at::ScalarType dtype);

// x [B, H, T, D] rotated: x*cos + rotate_half(x)*sin. Forwards to kernels::apply_rope (the backend picks the implementation).
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace llmstudio::model
