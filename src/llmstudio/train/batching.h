// Training batches from formatted samples: a seeded shuffle per epoch, batches of batch_size, each left-padded
// to the padding_quantile of its samples' lengths (H2O's rule: longer samples are cut from the left), so no
// batch carries more padding than it needs.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "llmstudio/model/attention.h"
#include "llmstudio/tokenizer/prompt_format.h"

namespace llmstudio::train {

struct Batch {
  at::Tensor input_ids;       // [B, T] int64, left-padded with the pad id
  at::Tensor attention_mask;  // [B, T] int64; packed rows (train/packing): bool [B, 1, T, T]
  at::Tensor labels;          // [B, T] int64, -100 on padding and masked positions
  std::int64_t tokens = 0;    // real (non-padding) tokens
  at::Tensor position_ids;    // [B, T] int64 for packed rows; undefined = derived from the mask
  // The causal segments the attention_mask describes (padding, packed documents), for the flash kernel; empty
  // when the mask says more (token-masking augmentation).
  model::SequenceSegments segments;
  bool padded = true;  // false: no padding and plain causal visibility, so the model needs no mask at all
  // The mask to give the model: undefined when it would only say "causal".
  at::Tensor model_mask() const { return padded ? attention_mask : at::Tensor(); }
};

// The batch of samples `rows` (indices into `samples`), padded to the quantile length.
Batch collate(const std::vector<tokenizer::PromptSample>& samples, const std::vector<std::size_t>& rows,
              double padding_quantile, std::int32_t pad_token_id);

// Moves the batch's tensors to a CUDA device without stalling its queue (pinned host copies, asynchronous
// transfers); other devices: unchanged (the model moves what it needs).
void move_to_device(Batch& batch, const at::Device& device);

// Sample order of an epoch: a shuffle seeded by (seed, epoch), so a resumed run sees the same batches.
std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::int64_t epoch, bool shuffle);

// Batches (lists of sample indices) of an epoch; drop_last drops a final incomplete batch (when there is more
// than one batch).
std::vector<std::vector<std::size_t>> make_batches(const std::vector<std::size_t>& order, std::int64_t batch_size,
                                                   bool drop_last);

}  // namespace llmstudio::train
