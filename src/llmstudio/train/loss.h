// Causal-LM losses as H2O LLM Studio defines them: next-token cross-entropy over labels with -100 masking,
// averaged over all target tokens of the batch (TokenAveragedCrossEntropy) or per sample then over samples
// (SampleAveragedCrossEntropy). Computed in float32.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "llmstudio/experiment/config_enums.h"

namespace llmstudio::train {

// training.loss_function (experiment/config_enums.h): TokenAveraged or SampleAveraged.
using LossKind = experiment::LossFunction;

// "TokenAveragedCrossEntropy" / "SampleAveragedCrossEntropy" (the config's names); Error listing them otherwise.
LossKind parse_loss_kind(const std::string& name);

// logits [B, T, V]; labels [B, T] with -100 on positions that are not trained. Position t predicts label t+1.
at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels, LossKind kind);

}  // namespace llmstudio::train
