// Batching (see batching.h).
#include "llmstudio/train/batching.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <random>

#include "llmstudio/core/error.h"

namespace llmstudio::train {

Batch collate(const std::vector<tokenizer::PromptSample>& samples, const std::vector<std::size_t>& rows,
              double padding_quantile, std::int32_t pad_token_id) {
  LLMS_CHECK(!rows.empty(), "collate: empty batch");
  std::vector<std::int64_t> lengths;
  for (auto r : rows) lengths.push_back(static_cast<std::int64_t>(samples.at(r).input_ids.size()));
  std::vector<std::int64_t> sorted = lengths;
  std::sort(sorted.begin(), sorted.end());
  // The quantile of the lengths (nearest rank, as numpy's "higher" would give for q = 1: the maximum).
  const double q = std::clamp(padding_quantile, 0.0, 1.0);
  const auto idx = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size() - 1)));
  const std::int64_t T = std::max<std::int64_t>(2, sorted[idx]);
  const auto B = static_cast<std::int64_t>(rows.size());
  std::vector<std::int64_t> ids(static_cast<std::size_t>(B * T), pad_token_id), mask(ids.size(), 0),
      labels(ids.size(), tokenizer::kIgnoreIndex);
  std::int64_t tokens = 0;
  std::vector<std::int64_t> kept;
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& s = samples[rows[static_cast<std::size_t>(b)]];
    const auto n = static_cast<std::int64_t>(s.input_ids.size());
    const std::int64_t keep = std::min(n, T), skip = n - keep;  // cut from the left
    for (std::int64_t j = 0; j < keep; ++j) {
      const auto dst = static_cast<std::size_t>(b * T + (T - keep) + j), src = static_cast<std::size_t>(skip + j);
      ids[dst] = s.input_ids[src];
      mask[dst] = 1;
      labels[dst] = s.labels[src];
    }
    // The first kept token is predicted from padding: never a target.
    labels[static_cast<std::size_t>(b * T + (T - keep))] = tokenizer::kIgnoreIndex;
    tokens += keep;
    kept.push_back(keep);
  }
  auto make = [&](std::vector<std::int64_t>& v) { return at::tensor(v, at::kLong).view({B, T}); };
  Batch out;
  out.input_ids = make(ids);
  out.attention_mask = make(mask);
  out.labels = make(labels);
  out.tokens = tokens;
  out.segments = model::SequenceSegments::left_padded(kept, T);
  out.padded = tokens < B * T;
  return out;
}

void move_to_device(Batch& batch, const at::Device& device) {
  if (!device.is_cuda()) return;
  for (at::Tensor* t : {&batch.input_ids, &batch.attention_mask, &batch.labels, &batch.position_ids})
    if (t->defined() && t->device() != device) *t = t->pin_memory().to(device, /*non_blocking=*/true);
}

std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::int64_t epoch, bool shuffle) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  if (!shuffle) return order;
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

std::vector<std::vector<std::size_t>> make_batches(const std::vector<std::size_t>& order, std::int64_t batch_size,
                                                   bool drop_last) {
  LLMS_CHECK(batch_size >= 1, "batch_size must be >= 1, found ", batch_size);
  std::vector<std::vector<std::size_t>> batches;
  for (std::size_t i = 0; i < order.size(); i += static_cast<std::size_t>(batch_size)) {
    std::size_t end = std::min(order.size(), i + static_cast<std::size_t>(batch_size));
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i), order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  if (drop_last && batches.size() > 1 && static_cast<std::int64_t>(batches.back().size()) < batch_size) batches.pop_back();
  return batches;
}

}  // namespace llmstudio::train
