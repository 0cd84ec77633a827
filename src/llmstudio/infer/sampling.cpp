// Logits processing and token choice (see sampling.h).
#include "llmstudio/infer/sampling.h"

#include <chrono>
#include <limits>
#include <utility>

#include "llmstudio/core/error.h"

namespace llmstudio::infer {
namespace {

at::Tensor mask_ids(const at::Tensor& scores, const at::Tensor& ids) {
  return scores.index_fill(1, ids, -std::numeric_limits<float>::infinity());
}

}  // namespace

at::Tensor apply_repetition_penalty(const at::Tensor& scores, const at::Tensor& history, const at::Tensor& history_mask,
                                    double penalty) {
  if (penalty == 1.0 || !history.defined() || history.size(1) == 0) return scores;
  LLMS_CHECK(penalty > 0, "repetition_penalty must be > 0, found ", penalty);
  // Count each vocabulary entry's occurrences among the row's real (non-padding) history tokens.
  at::Tensor real = history_mask.defined() ? history_mask.to(at::kInt) : at::ones_like(history, at::kInt);
  at::Tensor counts = at::zeros(scores.sizes(), scores.options().dtype(at::kInt));
  counts.scatter_add_(1, history, real);
  at::Tensor seen = counts.gt(0);
  at::Tensor penalised = at::where(scores.lt(0), scores * penalty, scores / penalty);
  return at::where(seen, penalised, scores);
}

at::Tensor suppress_tokens(const at::Tensor& scores, const std::vector<std::int64_t>& token_ids) {
  if (token_ids.empty()) return scores;
  return mask_ids(scores, at::tensor(token_ids, at::kLong).to(scores.device()));
}

at::Tensor apply_temperature(const at::Tensor& scores, double temperature) {
  LLMS_CHECK(temperature > 0, "temperature must be > 0 when sampling, found ", temperature);
  return temperature == 1.0 ? scores : scores / temperature;
}

at::Tensor apply_top_k(const at::Tensor& scores, std::int64_t k) {
  if (k <= 0 || k >= scores.size(-1)) return scores;
  at::Tensor kth = std::get<0>(scores.topk(k, -1)).narrow(-1, k - 1, 1);
  return scores.masked_fill(scores.lt(kth), -std::numeric_limits<float>::infinity());
}

at::Tensor apply_top_p(const at::Tensor& scores, double p) {
  if (p >= 1.0) return scores;
  LLMS_CHECK(p > 0, "top_p must be in (0, 1], found ", p);
  // As transformers: sort ascending, drop the tokens whose cumulative probability is <= 1 - p,
  // always keeping the most probable one.
  auto [sorted, order] = scores.sort(-1, /*descending=*/false);
  at::Tensor cum = sorted.softmax(-1).cumsum(-1);
  at::Tensor remove_sorted = cum.le(1.0 - p);
  remove_sorted.narrow(-1, remove_sorted.size(-1) - 1, 1).fill_(false);
  at::Tensor remove = at::zeros_like(remove_sorted).scatter(-1, order, remove_sorted);
  return scores.masked_fill(remove, -std::numeric_limits<float>::infinity());
}

at::Tensor sample_tokens(const at::Tensor& scores, std::optional<at::Generator> generator) {
  at::Tensor probs = scores.to(at::kFloat).softmax(-1);
  return at::multinomial(probs, 1, /*replacement=*/false, generator).squeeze(-1);
}

TokenSampler::TokenSampler(SamplingSettings settings, const at::Device& device) : settings_(std::move(settings)) {
  if (!settings_.suppressed_early.empty())
    suppressed_ = at::tensor(settings_.suppressed_early, at::kLong).to(device);
  if (settings_.do_sample) {
    LLMS_CHECK(settings_.temperature > 0, "temperature must be > 0 when sampling, found ", settings_.temperature);
    at::Generator g = at::globalContext().defaultGenerator(device).clone();
    g.set_current_seed(settings_.seed.value_or(
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())));
    generator_ = g;
  }
}

at::Tensor TokenSampler::choose(const at::Tensor& scores_in, const at::Tensor& history, const at::Tensor& history_mask,
                                bool suppress) {
  at::Tensor scores = apply_repetition_penalty(scores_in, history, history_mask, settings_.repetition_penalty);
  if (suppress && suppressed_.defined()) scores = mask_ids(scores, suppressed_);
  if (!settings_.do_sample) return scores.argmax(-1);
  scores = apply_top_p(apply_top_k(apply_temperature(scores, settings_.temperature), settings_.top_k), settings_.top_p);
  return sample_tokens(scores, generator_);
}

}  // namespace llmstudio::infer
