// Sequence packing (see packing.h).
#include "llmstudio/train/packing.h"

#include <algorithm>

#include "llmstudio/core/error.h"

namespace llmstudio::train {

namespace {
constexpr std::size_t kOpenRows = 64;  // rows still considered for filling (keeps packing linear in samples)
}  // namespace

std::vector<std::vector<std::size_t>> pack_samples(const std::vector<std::int64_t>& lengths, std::int64_t row_length) {
  LLMS_CHECK(row_length >= 2, "packing: row length must be >= 2 tokens (tokenizer.max_length), found ", row_length);
  std::vector<std::vector<std::size_t>> rows;
  std::vector<std::int64_t> used;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const std::int64_t n = std::min(lengths[i], row_length);
    if (n <= 0) continue;  // nothing to train on
    std::size_t r = rows.size() > kOpenRows ? rows.size() - kOpenRows : 0;
    while (r < rows.size() && used[r] + n > row_length) ++r;
    if (r == rows.size()) {
      rows.emplace_back();
      used.push_back(0);
    }
    rows[r].push_back(i);
    used[r] += n;
  }
  return rows;
}

std::vector<std::int64_t> sample_lengths(const std::vector<tokenizer::PromptSample>& samples) {
  std::vector<std::int64_t> n;
  n.reserve(samples.size());
  for (const auto& s : samples) n.push_back(static_cast<std::int64_t>(s.input_ids.size()));
  return n;
}

at::Tensor packed_attention_mask(const at::Tensor& segment_ids) {
  LLMS_CHECK(segment_ids.dim() == 2, "packed_attention_mask: segment ids must be [batch, length]");
  const std::int64_t B = segment_ids.size(0), L = segment_ids.size(1);
  auto lopts = at::TensorOptions().dtype(at::kLong).device(segment_ids.device());
  at::Tensor q = at::arange(L, lopts).view({L, 1}), k = at::arange(L, lopts).view({1, L});
  at::Tensor causal = k.le(q).view({1, L, L});
  at::Tensor seg_q = segment_ids.view({B, L, 1}), seg_k = segment_ids.view({B, 1, L});
  at::Tensor same = seg_q.eq(seg_k).logical_and(seg_k.ne(0));
  at::Tensor self = k.eq(q).view({1, L, L});  // padding queries see themselves (no empty softmax row)
  return same.logical_and(causal).logical_or(self.logical_and(seg_q.eq(0))).view({B, 1, L, L});
}

Batch collate_packed(const std::vector<tokenizer::PromptSample>& samples, const std::vector<std::vector<std::size_t>>& rows,
                     const std::vector<std::size_t>& row_ids, std::int64_t row_length, std::int32_t pad_token_id,
                     const at::Device& mask_device) {
  LLMS_CHECK(!row_ids.empty(), "collate_packed: empty batch");
  auto kept = [&](std::size_t s) { return std::min<std::int64_t>(static_cast<std::int64_t>(samples.at(s).input_ids.size()), row_length); };
  std::int64_t L = 2;
  for (auto r : row_ids) {
    std::int64_t n = 0;
    for (auto s : rows.at(r)) n += kept(s);
    L = std::max(L, n);
  }
  const auto B = static_cast<std::int64_t>(row_ids.size());
  const auto size = static_cast<std::size_t>(B * L);
  std::vector<std::int64_t> ids(size, pad_token_id), labels(size, tokenizer::kIgnoreIndex), pos(size, 0), seg(size, 0);
  std::int64_t tokens = 0;
  model::SequenceSegments segs;
  segs.offsets.push_back(0);
  auto cut = [&](std::int64_t offset, std::int64_t length) {  // a segment ending at offset
    if (length <= 0) return;
    segs.offsets.push_back(static_cast<std::int32_t>(offset));
    segs.max_length = std::max(segs.max_length, length);
  };
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t at = 0, segment = 0;
    for (auto s : rows[row_ids[static_cast<std::size_t>(b)]]) {
      const auto& smp = samples[s];
      const std::int64_t keep = kept(s), skip = static_cast<std::int64_t>(smp.input_ids.size()) - keep;
      ++segment;
      for (std::int64_t j = 0; j < keep; ++j) {
        const auto dst = static_cast<std::size_t>(b * L + at + j), src = static_cast<std::size_t>(skip + j);
        ids[dst] = smp.input_ids[src];
        labels[dst] = j == 0 ? tokenizer::kIgnoreIndex : smp.labels[src];  // the first token is never a target
        pos[dst] = j;
        seg[dst] = segment;
      }
      at += keep;
      tokens += keep;
      cut(b * L + at, keep);
    }
    cut((b + 1) * L, L - at);  // the row's padding
  }
  auto make = [&](std::vector<std::int64_t>& v) { return at::tensor(v, at::kLong).view({B, L}); };
  Batch out;
  out.input_ids = make(ids);
  out.labels = make(labels);
  out.position_ids = make(pos);
  out.attention_mask = packed_attention_mask(make(seg).to(mask_device));
  out.tokens = tokens;
  out.segments = std::move(segs);
  return out;
}

}  // namespace llmstudio::train
