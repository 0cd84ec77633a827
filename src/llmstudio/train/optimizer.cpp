// Optimizers (see optimizer.h). The update formulas follow torch.optim's single-tensor implementations.
#include "llmstudio/train/optimizer.h"

#include <ATen/core/grad_mode.h>

#include <cmath>

#include "llmstudio/core/error.h"

namespace llmstudio::train {

void OptimizerConfig::validate() const {
  using experiment::OptimizerKind;
  switch (kind) {
    case OptimizerKind::AdamW:
    case OptimizerKind::Adam:
    case OptimizerKind::SGD: break;
    case OptimizerKind::RMSprop:
    case OptimizerKind::Adadelta:
    case OptimizerKind::AdamW8bit:
      fail("optimizer '", experiment::to_string(kind), "' is not supported; allowed: AdamW, Adam, SGD");
  }
  LLMS_CHECK(lr > 0, "learning_rate must be > 0, found ", lr);
  LLMS_CHECK(weight_decay >= 0, "weight_decay must be >= 0, found ", weight_decay);
  LLMS_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "Adam betas must be in [0, 1), found ", beta1, ", ", beta2);
  LLMS_CHECK(eps > 0, "eps must be > 0, found ", eps);
  LLMS_CHECK(momentum >= 0 && momentum < 1, "momentum must be in [0, 1), found ", momentum);
}

bool decays(const std::string& name, const at::Tensor& param) {
  if (param.dim() < 2) return false;
  return name.find("norm") == std::string::npos && name.find(".bias") == std::string::npos;
}

Optimizer::Optimizer(std::vector<std::pair<std::string, at::Tensor>> params, OptimizerConfig config)
    : params_(std::move(params)), config_(std::move(config)) {
  config_.validate();
  LLMS_CHECK(!params_.empty(), "optimizer: no trainable parameters");
  for (const auto& [name, p] : params_) {
    LLMS_CHECK(p.requires_grad(), "optimizer: parameter ", name, " does not require grad");
    decay_.push_back(decays(name, p));
    lr_factors_.push_back(1.0);
    exp_avg_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
    exp_avg_sq_.push_back(config_.kind == experiment::OptimizerKind::SGD ? at::Tensor() : at::zeros_like(p, at::MemoryFormat::Preserve));
  }
}

void Optimizer::set_lr_factors(std::vector<double> factors) {
  LLMS_CHECK(factors.size() == params_.size(), "optimizer: ", factors.size(), " learning-rate factors for ",
             params_.size(), " parameters");
  for (double f : factors) LLMS_CHECK(f > 0 && std::isfinite(f), "optimizer: learning-rate factor must be > 0, found ", f);
  lr_factors_ = std::move(factors);
}

std::vector<double> differential_lr_factors(const std::vector<std::pair<std::string, at::Tensor>>& params,
                                            const std::vector<std::string>& layers, double lr, double differential_lr) {
  LLMS_CHECK(lr > 0 && differential_lr > 0, "learning rates must be > 0 (learning_rate ", lr,
             ", differential_learning_rate ", differential_lr, ")");
  std::vector<double> f;
  for (const auto& [name, p] : params) {
    const std::string h2o_name = "backbone." + name;
    bool match = false;
    for (const auto& l : layers) match = match || (!l.empty() && h2o_name.find(l) != std::string::npos);
    f.push_back(match ? differential_lr / lr : 1.0);
  }
  return f;
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_)
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
}

at::Tensor Optimizer::clip_grad_norm(double max_norm) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  for (auto& [name, p] : params_)
    if (p.grad().defined()) norms.push_back(p.grad().to(at::kFloat).norm(2));
  if (norms.empty()) return at::zeros({}, at::kFloat);
  at::Tensor total = at::stack(norms).norm(2);
  if (max_norm > 0) {
    at::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);  // as torch.nn.utils.clip_grad_norm_
    for (auto& [name, p] : params_)
      if (p.grad().defined()) p.grad().mul_(coef.to(p.grad().scalar_type()));
  }
  return total;
}

void Optimizer::step(double group_lr) {
  at::NoGradGuard no_grad;
  ++step_;
  const double b1 = config_.beta1, b2 = config_.beta2;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const double lr = group_lr * lr_factors_[i];
    at::Tensor g = p.grad();
    const double wd = decay_[i] ? config_.weight_decay : 0.0;
    if (config_.kind == experiment::OptimizerKind::SGD) {
      if (wd != 0) g = g.add(p, wd);
      if (config_.momentum > 0) {
        if (step_ == 1) exp_avg_[i].copy_(g);
        else exp_avg_[i].mul_(config_.momentum).add_(g);
        g = exp_avg_[i];
      }
      p.add_(g, -lr);
      continue;
    }
    if (config_.kind == experiment::OptimizerKind::AdamW) {
      p.mul_(1.0 - lr * wd);
    } else if (wd != 0) {
      g = g.add(p, wd);  // Adam: L2 penalty in the gradient
    }
    exp_avg_[i].lerp_(g, 1.0 - b1);
    exp_avg_sq_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
    const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step_));
    const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step_));
    at::Tensor denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bc2)).add_(config_.eps);
    p.addcdiv_(exp_avg_[i], denom, -lr / bc1);
  }
}

std::map<std::string, at::Tensor> Optimizer::state() const {
  std::map<std::string, at::Tensor> s;
  s["step"] = at::tensor(step_, at::kLong);
  for (size_t i = 0; i < params_.size(); ++i) {
    s["exp_avg/" + params_[i].first] = exp_avg_[i];
    if (exp_avg_sq_[i].defined()) s["exp_avg_sq/" + params_[i].first] = exp_avg_sq_[i];
  }
  return s;
}

void Optimizer::load_state(const std::map<std::string, at::Tensor>& s) {
  at::NoGradGuard no_grad;
  auto get = [&](const std::string& key) -> const at::Tensor& {
    auto it = s.find(key);
    LLMS_CHECK(it != s.end(), "optimizer state: missing ", key, " (checkpoint from another configuration?)");
    return it->second;
  };
  step_ = get("step").item<std::int64_t>();
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avg_[i].copy_(get("exp_avg/" + params_[i].first));
    if (exp_avg_sq_[i].defined()) exp_avg_sq_[i].copy_(get("exp_avg_sq/" + params_[i].first));
  }
}

}  // namespace llmstudio::train
