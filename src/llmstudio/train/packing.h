// Sequence packing (training.packing, off by default): training samples concatenated into rows of at most
// row_length tokens so that batches carry little padding. Each sample keeps its own positions (0, 1, ...),
// attends only to itself (a block-diagonal causal mask), and its first token is never a target (it would be
// predicted from the previous sample), so a packed row trains exactly as its samples would one by one: the
// token-averaged loss of a packed batch equals that of the same samples unpacked.
//
// Rows are formed once per run (first fit, in sample order, deterministic), and the epoch shuffle then orders
// rows, so the number of steps per epoch does not depend on the shuffle.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "llmstudio/tokenizer/prompt_format.h"
#include "llmstudio/train/batching.h"

namespace llmstudio::train {

// Packed rows: each a list of sample indices whose lengths (each capped at row_length) sum to <= row_length.
// First fit: a sample goes into the first of the last 64 rows with room for it, else into a new row.
std::vector<std::vector<std::size_t>> pack_samples(const std::vector<std::int64_t>& lengths, std::int64_t row_length);

// Sample lengths (tokens) of `samples`, for pack_samples.
std::vector<std::int64_t> sample_lengths(const std::vector<tokenizer::PromptSample>& samples);

// The batch of packed rows `row_ids` (indices into `rows`): input_ids / labels / position_ids [B, L] with L the
// longest row of the batch (right-padded with pad_token_id, labels -100), attention_mask a bool [B, 1, L, L]
// block-diagonal causal mask built on `mask_device` (padding positions see only themselves). Samples longer
// than row_length are cut from the left, as collate() does.
Batch collate_packed(const std::vector<tokenizer::PromptSample>& samples, const std::vector<std::vector<std::size_t>>& rows,
                     const std::vector<std::size_t>& row_ids, std::int64_t row_length, std::int32_t pad_token_id,
                     const at::Device& mask_device = at::kCPU);

// The block-diagonal causal mask [B, 1, L, L] of segment ids [B, L] (1, 2, ... per sample; 0 = padding):
// a query sees the keys of its own segment up to itself; a padding query sees only itself.
at::Tensor packed_attention_mask(const at::Tensor& segment_ids);

}  // namespace llmstudio::train
