// Causal-LM losses as H2O LLM Studio defines them: next-token cross-entropy over labels with -100 masking,
// averaged over all target tokens of the batch (TokenAveragedCrossEntropy) or per sample then over samples
// (SampleAveragedCrossEntropy). Computed in float32; from the final hidden states through the chunked
// lm_head + cross-entropy kernel (kernels/linear_cross_entropy.h) on CUDA, which never materializes the logits.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "llmstudio/experiment/config_enums.h"
#include "llmstudio/kernels/linear_cross_entropy.h"

namespace llmstudio::train {

// training.loss_function (experiment/config_enums.h): TokenAveraged or SampleAveraged.
using LossKind = experiment::LossFunction;

// "TokenAveragedCrossEntropy" / "SampleAveragedCrossEntropy" (the config's names); Error listing them otherwise.
LossKind parse_loss_kind(const std::string& name);

// logits [B, T, V]; labels [B, T] with -100 on positions that are not trained. Position t predicts label t+1.
at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels, LossKind kind);

// Per-position weights [B, T] (float32, on labels' device, no host sync) such that sum(w * ce) is the loss of
// `kind`, for targets [B, T] = labels shifted left by one with -100 in the last column (shifted_targets): 1 / (all
// targets) for TokenAveraged, 1 / (the sample's targets * samples with targets) for SampleAveraged; 0 on -100.
at::Tensor loss_token_weights(const at::Tensor& targets, LossKind kind);
at::Tensor shifted_targets(const at::Tensor& labels);

// The same loss as causal_lm_loss(at::linear(hidden, lm_head_weight), labels, kind) from hidden [B, T, H]:
// where the kernel's Auto picks the reference (CPU, MPS) exactly that formula (unchanged numerics); on CUDA
// kernels::linear_cross_entropy over all B*T rows (targets shifted, so hidden needs no copy). A batch without
// any target gives 0 there (the plain formula gives NaN for TokenAveraged).
at::Tensor causal_lm_loss_from_hidden(const at::Tensor& hidden, const at::Tensor& lm_head_weight,
                                      const at::Tensor& labels, LossKind kind,
                                      const kernels::LinearCrossEntropyOptions& options = {});

}  // namespace llmstudio::train
