// Optimizers (see optimizer.h). The update formulas follow torch.optim's single-tensor implementations.
#include "llmstudio/train/optimizer.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>
#include <tuple>

#include "llmstudio/core/error.h"

namespace llmstudio::train {
using experiment::OptimizerKind;

void OptimizerConfig::validate() const {
  switch (kind) {
    case OptimizerKind::AdamW:
    case OptimizerKind::Adam:
    case OptimizerKind::SGD:
    case OptimizerKind::RMSprop:
    case OptimizerKind::Adadelta: break;
    case OptimizerKind::AdamW8bit:  // refused by the config (needs bitsandbytes)
      fail("optimizer '", experiment::to_string(kind), "' is not supported; allowed: AdamW, Adam, SGD, RMSprop, Adadelta");
  }
  LLMS_CHECK(lr > 0, "learning_rate must be > 0, found ", lr);
  LLMS_CHECK(weight_decay >= 0, "weight_decay must be >= 0, found ", weight_decay);
  LLMS_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "Adam betas must be in [0, 1), found ", beta1, ", ", beta2);
  LLMS_CHECK(eps > 0, "eps must be > 0, found ", eps);
  LLMS_CHECK(momentum >= 0 && momentum < 1, "momentum must be in [0, 1), found ", momentum);
  LLMS_CHECK(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0");
  LLMS_CHECK(alpha >= 0 && alpha < 1, "RMSprop alpha must be in [0, 1), found ", alpha);
  LLMS_CHECK(rho >= 0 && rho <= 1, "Adadelta rho must be in [0, 1], found ", rho);
}

OptimizerConfig OptimizerConfig::h2o(OptimizerKind kind, double lr, double weight_decay) {
  OptimizerConfig c;
  c.kind = kind;
  c.lr = lr;
  c.weight_decay = weight_decay;
  switch (kind) {
    case OptimizerKind::SGD:
      c.momentum = 0.9;
      c.nesterov = true;
      break;
    case OptimizerKind::RMSprop:
      c.momentum = 0.9;
      c.alpha = 0.9;
      break;
    case OptimizerKind::Adadelta:
      c.eps = 1e-6;  // torch.optim.Adadelta's default (1e-8 is Adam's and RMSprop's)
      break;
    case OptimizerKind::AdamW:
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW8bit: break;
  }
  return c;
}

namespace {

// The state slots each optimizer keeps per parameter, named as torch.optim's state (SGD's momentum buffer
// keeps the name exp_avg that earlier checkpoints used).
std::vector<std::string> slot_names(const OptimizerConfig& c) {
  switch (c.kind) {
    case OptimizerKind::SGD: return c.momentum > 0 ? std::vector<std::string>{"exp_avg"} : std::vector<std::string>{};
    case OptimizerKind::RMSprop:
      return c.momentum > 0 ? std::vector<std::string>{"square_avg", "momentum_buffer"} : std::vector<std::string>{"square_avg"};
    case OptimizerKind::Adadelta: return {"square_avg", "acc_delta"};
    case OptimizerKind::AdamW:
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW8bit: break;
  }
  return {"exp_avg", "exp_avg_sq"};
}

}  // namespace

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
  }
  slot_names_ = slot_names(config_);
  for (size_t k = 0; k < slot_names_.size(); ++k) {
    slots_.emplace_back();
    for (const auto& [name, p] : params_) slots_.back().push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
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
  if (fused_adam_step(group_lr)) return;
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const double lr = group_lr * lr_factors_[i];
    const double wd = decay_[i] ? config_.weight_decay : 0.0;
    switch (config_.kind) {
      case OptimizerKind::SGD: sgd_update(i, p.grad(), lr, wd); break;
      case OptimizerKind::RMSprop: rmsprop_update(i, p.grad(), lr, wd); break;
      case OptimizerKind::Adadelta: adadelta_update(i, p.grad(), lr, wd); break;
      case OptimizerKind::AdamW:
      case OptimizerKind::Adam:
      case OptimizerKind::AdamW8bit: adam_update(i, p.grad(), lr, wd); break;  // AdamW8bit: refused by validate()
    }
  }
}

// On CUDA, Adam/AdamW run as libtorch's fused multi-tensor kernels (torch.optim's fused=True: one launch per
// group of parameters sharing a learning rate and weight decay, instead of several per parameter). Same update
// as adam_update up to float rounding; every parameter reads one device step counter, so the bias correction
// follows step_ as in adam_update. False (nothing done) off CUDA or for other optimizers.
bool Optimizer::fused_adam_step(double group_lr) {
  const bool adamw = config_.kind == OptimizerKind::AdamW;
  if (!adamw && config_.kind != OptimizerKind::Adam) return false;
  const at::Tensor& first = params_.front().second;
  if (!first.is_cuda()) return false;
  if (!device_step_.defined()) device_step_ = at::zeros({}, first.options().dtype(at::kFloat));
  device_step_.fill_(static_cast<double>(step_));
  // (lr, weight decay, dtype) -> parameters: one fused call takes tensors of one dtype (e.g. float32 adapters
  // and bf16 unfrozen base layers go to two calls).
  std::map<std::tuple<double, double, at::ScalarType>, std::vector<size_t>> groups;
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;
    LLMS_CHECK(p.is_cuda() && p.grad().scalar_type() == p.scalar_type(), "optimizer: parameter ", params_[i].first,
               " must be a CUDA tensor with a gradient of its dtype for the fused AdamW");
    groups[{group_lr * lr_factors_[i], decay_[i] ? config_.weight_decay : 0.0, p.scalar_type()}].push_back(i);
  }
  for (const auto& [key, members] : groups) {
    std::vector<at::Tensor> p, g, m, v, steps;
    for (size_t i : members) {
      p.push_back(params_[i].second);
      g.push_back(params_[i].second.grad());
      m.push_back(slots_[0][i]);
      v.push_back(slots_[1][i]);
      steps.push_back(device_step_);
    }
    const auto [lr, wd, dtype] = key;
    if (adamw)
      at::_fused_adamw_(p, g, m, v, {}, steps, lr, config_.beta1, config_.beta2, wd, config_.eps, false, false);
    else
      at::_fused_adam_(p, g, m, v, {}, steps, lr, config_.beta1, config_.beta2, wd, config_.eps, false, false);
  }
  return true;
}

// torch.optim.Adam / AdamW (_single_tensor_adam(w)): bias-corrected moments; AdamW decays the weights
// directly, Adam adds the L2 penalty to the gradient.
void Optimizer::adam_update(size_t i, at::Tensor g, double lr, double wd) {
  at::Tensor& p = params_[i].second;
  at::Tensor &exp_avg = slots_[0][i], &exp_avg_sq = slots_[1][i];
  const double b1 = config_.beta1, b2 = config_.beta2;
  if (config_.kind == OptimizerKind::AdamW) p.mul_(1.0 - lr * wd);
  else if (wd != 0) g = g.add(p, wd);
  exp_avg.lerp_(g, 1.0 - b1);
  exp_avg_sq.mul_(b2).addcmul_(g, g, 1.0 - b2);
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step_));
  at::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(config_.eps);
  p.addcdiv_(exp_avg, denom, -lr / bc1);
}

// torch.optim.SGD (_single_tensor_sgd, dampening 0): the buffer starts as the first gradient.
void Optimizer::sgd_update(size_t i, at::Tensor g, double lr, double wd) {
  at::Tensor& p = params_[i].second;
  if (wd != 0) g = g.add(p, wd);
  if (config_.momentum > 0) {
    at::Tensor& buf = slots_[0][i];
    if (step_ == 1) buf.copy_(g);
    else buf.mul_(config_.momentum).add_(g);
    g = config_.nesterov ? g.add(buf, config_.momentum) : buf;
  }
  p.add_(g, -lr);
}

// torch.optim.RMSprop (_single_tensor_rmsprop, not centered): a running average of squared gradients divides
// the gradient; with momentum the quotient accumulates in a buffer (starting at zero).
void Optimizer::rmsprop_update(size_t i, at::Tensor g, double lr, double wd) {
  at::Tensor& p = params_[i].second;
  at::Tensor& square_avg = slots_[0][i];
  if (wd != 0) g = g.add(p, wd);
  square_avg.mul_(config_.alpha).addcmul_(g, g, 1.0 - config_.alpha);
  at::Tensor avg = square_avg.sqrt().add_(config_.eps);
  if (config_.momentum > 0) {
    at::Tensor& buf = slots_[1][i];
    buf.mul_(config_.momentum).addcdiv_(g, avg);
    p.add_(buf, -lr);
  } else {
    p.addcdiv_(g, avg, -lr);
  }
}

// torch.optim.Adadelta (_single_tensor_adadelta): the step is the gradient scaled by the ratio of the RMS of
// past updates to the RMS of gradients, both smoothed by rho, times lr.
void Optimizer::adadelta_update(size_t i, at::Tensor g, double lr, double wd) {
  at::Tensor& p = params_[i].second;
  at::Tensor &square_avg = slots_[0][i], &acc_delta = slots_[1][i];
  const double rho = config_.rho, eps = config_.eps;
  if (wd != 0) g = g.add(p, wd);
  square_avg.mul_(rho).addcmul_(g, g, 1.0 - rho);
  at::Tensor std = square_avg.add(eps).sqrt_();
  at::Tensor delta = acc_delta.add(eps).sqrt_().div_(std).mul_(g);
  acc_delta.mul_(rho).addcmul_(delta, delta, 1.0 - rho);
  p.add_(delta, -lr);
}

std::map<std::string, at::Tensor> Optimizer::state() const {
  std::map<std::string, at::Tensor> s;
  s["step"] = at::tensor(step_, at::kLong);
  for (size_t k = 0; k < slot_names_.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i) s[slot_names_[k] + "/" + params_[i].first] = slots_[k][i];
  return s;
}

void Optimizer::load_state(const std::map<std::string, at::Tensor>& s) {
  at::NoGradGuard no_grad;
  auto get = [&](const std::string& key) -> const at::Tensor& {
    auto it = s.find(key);
    LLMS_CHECK(it != s.end(), "optimizer state: missing ", key, " for optimizer ", experiment::to_string(config_.kind),
               " (checkpoint saved with another training.optimizer or set of trainable parameters?)");
    return it->second;
  };
  step_ = get("step").item<std::int64_t>();
  for (size_t k = 0; k < slot_names_.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i) {
      const std::string key = slot_names_[k] + "/" + params_[i].first;
      const at::Tensor& t = get(key);
      LLMS_CHECK(t.sizes() == slots_[k][i].sizes(), "optimizer state: ", key, " has shape ", t.sizes(),
                 ", expected ", slots_[k][i].sizes(), " (checkpoint from another model or LoRA rank?)");
      slots_[k][i].copy_(t);
    }
}

}  // namespace llmstudio::train
