// Mixed-precision training (environment.mixed_precision / mixed_precision_dtype, H2O's keys): the plan for a
// run (whether autocast is used on the chosen device, in which dtype, and whether float16 loss scaling is on),
// an RAII autocast scope for the training forward pass, and the dynamic loss scaler for float16.
//
// What stays in float32: the weights that train (LoRA adapters, or every weight in full fine-tuning) are the
// float32 master copy; autocast (libtorch's at::autocast, the same op lists as torch.autocast) casts them and
// the activations to the low-precision dtype inside matmuls and attention only. RMSNorm normalises in float32
// (model/causal_lm), the residual stream keeps the embeddings' dtype, and the loss is computed in float32.
// A bfloat16 backbone (architecture.backbone_dtype) with LoRA keeps its frozen base weights in bfloat16.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "llmstudio/experiment/config_enums.h"

namespace llmstudio::train {

struct MixedPrecisionPlan {
  bool enabled = false;                    // run the training forward under autocast
  at::ScalarType dtype = at::kFloat;       // autocast dtype (kBFloat16 or kHalf) when enabled
  bool loss_scaling = false;               // float16: dynamic loss scaling (LossScaler)
  std::string note;                        // one line for the log: what is used and why
};

// Decides the plan. `device` is the chosen torch device ("cpu", "cuda:0", "mps"); `backbone_dtype` the
// configured architecture.backbone_dtype ("auto", "float32", "bfloat16", "float16"); `device_bf16` whether the
// device computes bfloat16 (CUDA sm80+, MPS, CPU). On CUDA and MPS mixed precision follows the config. On CPU,
// where low-precision matmuls are usually slower than float32, it is used only when the backbone dtype was set
// explicitly to bfloat16 or float16 (the user asked for low-precision compute); otherwise the note says why not.
// Throws llmstudio::Error for bfloat16 on a device without it (naming the keys and the fix).
MixedPrecisionPlan plan_mixed_precision(bool mixed_precision, experiment::MixedPrecisionDtype mixed_precision_dtype,
                                        const std::string& device, experiment::BackboneDtype backbone_dtype,
                                        bool device_bf16);

// Autocast on for `device_type` in `dtype` while alive (nesting-aware; restores the previous state and clears
// autocast's weight-cast cache when the outermost scope ends). A disabled scope does nothing.
class AutocastScope {
 public:
  AutocastScope(at::DeviceType device_type, at::ScalarType dtype, bool enabled = true);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  at::DeviceType device_type_;
  bool active_ = false, prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

struct LossScalerConfig {
  double init_scale = 65536.0;  // 2^16, as torch.amp.GradScaler
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;  // good steps in a row before the scale grows
};

// Dynamic loss scaling for float16 (torch.amp.GradScaler's rule): the loss is multiplied by the scale before
// backward; gradients are divided by it before clipping and the optimizer step; a step whose gradients hold
// inf/nan is skipped and halves the scale; growth_interval good steps in a row double it.
// The device part (scale_loss, unscale_) never synchronises; the caller reads found_inf together with
// whatever it already reads from the device and calls update() (host logic, unit-tested on its own).
class LossScaler {
 public:
  explicit LossScaler(LossScalerConfig config = {});
  double scale() const { return scale_; }
  std::int64_t good_steps() const { return good_steps_; }
  std::int64_t skipped_steps() const { return skipped_; }
  at::Tensor scale_loss(const at::Tensor& loss) const { return loss * scale_; }
  // Divides the gradients of `params` in place by the scale; returns a 0-d float tensor on their device:
  // 1 if any gradient holds inf or nan, else 0.
  at::Tensor unscale_(const std::vector<std::pair<std::string, at::Tensor>>& params) const;
  // After a step's gradients were checked: returns whether to apply the optimizer step, and updates the scale.
  bool update(bool found_inf);
  // Restores the state of a checkpoint.
  void restore(double scale, std::int64_t good_steps);

 private:
  LossScalerConfig config_;
  double scale_;
  std::int64_t good_steps_ = 0, skipped_ = 0;
};

}  // namespace llmstudio::train
