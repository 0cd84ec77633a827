// Optimizers over named parameters: AdamW, Adam, SGD (momentum, Nesterov), RMSprop, Adadelta, with the update
// formulas of torch.optim's single-tensor implementations and the hyperparameters H2O LLM Studio passes
// (OptimizerConfig::h2o), weight decay skipped for norms and biases (and LoRA-free 1-D tensors), gradient
// clipping by global norm. State lives on the parameters' device; no host synchronisation in step().
#pragma once

#include <ATen/ATen.h>

#include "llmstudio/experiment/config_enums.h"

#include <map>
#include <string>
#include <vector>

namespace llmstudio::train {

struct OptimizerConfig {
  experiment::OptimizerKind kind = experiment::OptimizerKind::AdamW;  // AdamW, Adam, SGD, RMSprop, Adadelta
  double lr = 1e-4;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // eps: Adam, AdamW, RMSprop, Adadelta
  double momentum = 0.0;                          // SGD, RMSprop
  bool nesterov = false;                          // SGD (needs momentum > 0)
  double alpha = 0.99;                            // RMSprop: smoothing of the squared-gradient average
  double rho = 0.9;                               // Adadelta: smoothing of both running averages
  void validate() const;
  // The optimizer H2O LLM Studio builds for training.optimizer = kind (mirrors its llm_studio/src/optimizers.py
  // Optimizers table as used by get_optimizer in src/utils/modeling_utils.py): torch.optim's defaults except
  // SGD (momentum 0.9, Nesterov) and RMSprop (momentum 0.9, alpha 0.9); Adadelta keeps rho 0.9, eps 1e-6.
  // lr and weight_decay come from the experiment (weight decay 0 for biases and norms, see decays()).
  static OptimizerConfig h2o(experiment::OptimizerKind kind, double lr, double weight_decay);
};

class Optimizer {
 public:
  Optimizer(std::vector<std::pair<std::string, at::Tensor>> params, OptimizerConfig config);
  // One update with the gradients in .grad() at learning rate `lr` (from the schedule).
  void step(double lr);
  void zero_grad();
  // Scales gradients so their global L2 norm is at most max_norm (no-op for max_norm <= 0). Returns the norm
  // before clipping as a 0-d tensor (no synchronisation).
  at::Tensor clip_grad_norm(double max_norm);
  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }
  // State for checkpoints: name -> tensor, "step" and "<slot>/<param>" for the optimizer's slots (torch.optim's
  // state names): AdamW/Adam exp_avg, exp_avg_sq; SGD exp_avg (the momentum buffer, when momentum > 0);
  // RMSprop square_avg, momentum_buffer (when momentum > 0); Adadelta square_avg, acc_delta.
  std::map<std::string, at::Tensor> state() const;
  void load_state(const std::map<std::string, at::Tensor>& state);
  const OptimizerConfig& config() const { return config_; }
  // Parameter groups by learning rate: parameter i trains at lr * factors[i] (all 1 by default), so a schedule
  // scales every group alike (as torch's LambdaLR-based schedules that H2O uses).
  void set_lr_factors(std::vector<double> factors);
  const std::vector<double>& lr_factors() const { return lr_factors_; }

 private:
  bool fused_adam_step(double group_lr);
  void adam_update(size_t i, at::Tensor g, double lr, double wd);
  void sgd_update(size_t i, at::Tensor g, double lr, double wd);
  void rmsprop_update(size_t i, at::Tensor g, double lr, double wd);
  void adadelta_update(size_t i, at::Tensor g, double lr, double wd);

  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<bool> decay_;
  std::vector<double> lr_factors_;
  std::vector<std::string> slot_names_;         // the state slots this optimizer keeps (see state())
  std::vector<std::vector<at::Tensor>> slots_;  // slots_[k][i]: slot k of parameter i
  OptimizerConfig config_;
  std::int64_t step_ = 0;
  at::Tensor device_step_;  // the fused kernels' step count (float32 on the parameters' CUDA device)
};

// H2O's differential learning rate (training.differential_learning_rate_layers / differential_learning_rate):
// a parameter whose H2O name contains one of `layers` as a substring trains at differential_lr, the others at
// lr. H2O names parameters by its model wrapper, "backbone." + the Hugging Face / PEFT name, so "backbone"
// matches everything, "embed" the embeddings, "lm_head" (or "head") the output head, "lora_B" the B matrices.
// Returns the factors for Optimizer::set_lr_factors (differential_lr / lr for the matches, 1 for the rest).
std::vector<double> differential_lr_factors(const std::vector<std::pair<std::string, at::Tensor>>& params,
                                            const std::vector<std::string>& layers, double lr, double differential_lr);

// Whether weight decay applies: not to biases and norm weights (1-D tensors), as is usual (and H2O does).
bool decays(const std::string& name, const at::Tensor& param);

}  // namespace llmstudio::train
