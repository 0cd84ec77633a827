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

at::Tensor shifted_targets(const at::Tensor& labels) {
  const std::int64_t T = labels.size(1);
  return at::cat({labels.narrow(1, 1, T - 1), at::full({labels.size(0), 1}, -100, labels.options())}, 1);
}

at::Tensor loss_token_weights(const at::Tensor& targets, LossKind kind) {
  const at::Tensor valid = targets.ne(-100).to(at::kFloat);
  if (kind == LossKind::TokenAveraged) return valid / valid.sum().clamp_min(1.0);
  const at::Tensor count = valid.sum(1, /*keepdim=*/true);
  const at::Tensor samples = count.gt(0).to(at::kFloat).sum().clamp_min(1.0);
  return valid / (count.clamp_min(1.0) * samples);
}

at::Tensor causal_lm_loss_from_hidden(const at::Tensor& hidden, const at::Tensor& lm_head_weight,
                                      const at::Tensor& labels, LossKind kind,
                                      const kernels::LinearCrossEntropyOptions& options) {
  using kernels::LceImpl;
  const bool chunked = options.impl == LceImpl::Chunked ||
                       (options.impl == LceImpl::Auto && kernels::linear_cross_entropy_chunked_on(hidden.device()));
  if (!chunked) return causal_lm_loss(at::linear(hidden, lm_head_weight), labels, kind);
  LLMS_CHECK(hidden.dim() == 3 && labels.dim() == 2 && hidden.size(0) == labels.size(0) &&
                 hidden.size(1) == labels.size(1),
             "causal_lm_loss_from_hidden: expected hidden [B, T, H] and labels [B, T], found ", hidden.sizes(), " and ",
             labels.sizes());
  const at::Tensor targets = shifted_targets(labels.to(hidden.device(), at::kLong));
  const at::Tensor weights = loss_token_weights(targets, kind);
  return kernels::linear_cross_entropy(hidden.reshape({-1, hidden.size(2)}), lm_head_weight, targets.reshape({-1}),
                                       weights.reshape({-1}), options);
}

}  // namespace llmstudio::train
