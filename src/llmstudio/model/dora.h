// DoRA (weight-decomposed low-rank adaptation, training.use_dora) on a Linear, as PEFT computes it
// (peft/tuners/lora/dora.py DoraLinearLayer and variants.py DoraLinearVariant, fan_in_fan_out false):
//   W' = m * (W + s B A) / ||W + s B A||_row, where m (lora_magnitude_vector, [out]) starts at the row norms of W
//   and the norm is treated as a constant in backward (detached, section 4.3 of the DoRA paper).
// In float32 (the adapter's dtype), whatever the base weight's dtype.
#pragma once

#include <ATen/ATen.h>

#include "llmstudio/model/causal_lm.h"

namespace llmstudio::model {

// ||W + scaling * B A|| over each output row, float32, detached ([out]). With B = 0 (a fresh adapter) it is the
// initial magnitude vector (PEFT's DoraLinearLayer.update_layer).
at::Tensor dora_weight_norm(const Linear& lin);

// The layer's output with its DoRA adapter: `base` = x W^T + b (the base layer's output, model dtype), `xd` = the
// input in the adapter dtype, after LoRA dropout when `dropped`. As PEFT: without dropout the base term reuses
// `base` minus the bias; with dropout it is recomputed from the dropped input.
at::Tensor dora_output(const Linear& lin, const at::Tensor& xd, const at::Tensor& base, bool dropped);

// The merged weight m / ||W + s B A||_row * (W + s B A) in the weight's dtype (PEFT's DoraLinearVariant.merge).
at::Tensor dora_merged_weight(const Linear& lin);

}  // namespace llmstudio::model
