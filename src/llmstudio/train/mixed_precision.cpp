// Mixed-precision plan, autocast scope and loss scaler (see mixed_precision.h).
#include "llmstudio/train/mixed_precision.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "llmstudio/core/error.h"

namespace llmstudio::train {

MixedPrecisionPlan plan_mixed_precision(bool mixed_precision, experiment::MixedPrecisionDtype mixed_precision_dtype,
                                        const std::string& device, experiment::BackboneDtype backbone_dtype,
                                        bool device_bf16) {
  using experiment::BackboneDtype;
  MixedPrecisionPlan plan;
  if (!mixed_precision) {
    plan.note = "mixed precision off (environment.mixed_precision: false)";
    return plan;
  }
  const bool cpu = device.rfind("cpu", 0) == 0;
  if (cpu && backbone_dtype != BackboneDtype::BFloat16 && backbone_dtype != BackboneDtype::Float16) {
    plan.note = "mixed precision not used on CPU with architecture.backbone_dtype " +
                std::string(experiment::to_string(backbone_dtype)) +
                " (float32 matmuls are faster on most CPUs); set backbone_dtype: bfloat16 to train in bf16 on CPU";
    return plan;
  }
  bool bf16 = true;
  switch (mixed_precision_dtype) {
    case experiment::MixedPrecisionDtype::BFloat16: bf16 = true; break;
    case experiment::MixedPrecisionDtype::Float16: bf16 = false; break;
  }
  LLMS_CHECK(!bf16 || device_bf16, "environment.mixed_precision_dtype: bfloat16 is not supported on ", device,
             " (CUDA needs compute capability 8.0+)\n  hint: --set environment.mixed_precision_dtype=float16");
  plan.enabled = true;
  plan.dtype = bf16 ? at::kBFloat16 : at::kHalf;
  plan.loss_scaling = !bf16;
  plan.note = std::string("mixed precision ") + std::string(experiment::to_string(mixed_precision_dtype)) +
              " (autocast; float32 master weights for what trains" + (bf16 ? ")" : ", dynamic loss scaling)");
  return plan;
}

AutocastScope::AutocastScope(at::DeviceType device_type, at::ScalarType dtype, bool enabled) : device_type_(device_type) {
  if (!enabled) return;
  active_ = true;
  prev_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::set_autocast_dtype(device_type_, dtype);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // As torch.autocast.__exit__: the cached weight casts live until the outermost scope ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_type_, prev_enabled_);
  at::autocast::set_autocast_dtype(device_type_, prev_dtype_);
}

LossScaler::LossScaler(LossScalerConfig config) : config_(config), scale_(config.init_scale) {
  LLMS_CHECK(config_.init_scale > 0 && config_.growth_factor > 1 && config_.backoff_factor > 0 &&
                 config_.backoff_factor < 1 && config_.growth_interval >= 1,
             "loss scaler: invalid settings (init_scale ", config_.init_scale, ", growth_factor ", config_.growth_factor,
             ", backoff_factor ", config_.backoff_factor, ", growth_interval ", config_.growth_interval, ")");
}

at::Tensor LossScaler::unscale_(const std::vector<std::pair<std::string, at::Tensor>>& params) const {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> bad;
  const double inv = 1.0 / scale_;
  at::Device device = at::kCPU;
  for (const auto& [name, p] : params) {
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad();
    device = g.device();
    bad.push_back(g.isfinite().all().logical_not());
    g.mul_(inv);
  }
  if (bad.empty()) return at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
  return at::stack(bad).any().to(at::kFloat);
}

bool LossScaler::update(bool found_inf) {
  if (found_inf) {
    scale_ *= config_.backoff_factor;
    good_steps_ = 0;
    ++skipped_;
    return false;
  }
  if (++good_steps_ >= config_.growth_interval) {
    const double grown = scale_ * config_.growth_factor;
    if (std::isfinite(grown)) scale_ = grown;  // as GradScaler: never grow to inf
    good_steps_ = 0;
  }
  return true;
}

void LossScaler::restore(double scale, std::int64_t good_steps) {
  LLMS_CHECK(scale > 0 && std::isfinite(scale) && good_steps >= 0, "loss scaler state: invalid scale ", scale,
             " / good steps ", good_steps, " in the checkpoint");
  scale_ = scale;
  good_steps_ = good_steps;
}

}  // namespace llmstudio::train
