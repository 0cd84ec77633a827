// Causal-LM losses (see loss.h).
#include "llmstudio/train/loss.h"

#include "llmstudio/core/error.h"

namespace llmstudio::train {

LossKind parse_loss_kind(const std::string& name) {
  if (auto kind = experiment::enum_from_string<LossKind>(name)) return *kind;
  fail("loss_function '", name, "' is not supported; allowed: TokenAveragedCrossEntropy, SampleAveragedCrossEntropy");
}

at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels, LossKind kind) {
  const std::int64_t B = logits.size(0), T = logits.size(1), V = logits.size(2);
  at::Tensor shift_logits = logits.narrow(1, 0, T - 1).to(at::kFloat).reshape({-1, V});
  at::Tensor shift_labels = labels.to(logits.device()).narrow(1, 1, T - 1).reshape({-1});
  if (kind == LossKind::TokenAveraged)
    return at::cross_entropy_loss(shift_logits, shift_labels, {}, at::Reduction::Mean, -100);
  at::Tensor per_token = at::cross_entropy_loss(shift_logits, shift_labels, {}, at::Reduction::None, -100).view({B, T - 1});
  at::Tensor valid = shift_labels.view({B, T - 1}).ne(-100).to(at::kFloat);
  at::Tensor per_sample = per_token.sum(1) / valid.sum(1).clamp_min(1.0);
  // Samples without any target token do not count (as H2O, which averages over samples that have targets).
  at::Tensor has = valid.sum(1).gt(0).to(at::kFloat);
  return (per_sample * has).sum() / has.sum().clamp_min(1.0);
}

}  // namespace llmstudio::train
