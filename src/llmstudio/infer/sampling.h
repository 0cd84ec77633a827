// Logits processing for generation, in transformers' order: repetition penalty, min-new-tokens EOS
// suppression, then (sampling only) temperature, top-k, top-p; and the token choice (argmax or a draw).
// Everything stays on the device; no host synchronisation. TokenSampler bundles them for a decode loop.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace llmstudio::infer {

// scores [B, V]; history [B, S] token ids seen so far (prompt + generated), history_mask [B, S] (1 = real
// token). A token present in a row's history has its score divided by `penalty` when positive and multiplied
// when negative (CTRL / transformers semantics). penalty 1 is a no-op.
at::Tensor apply_repetition_penalty(const at::Tensor& scores, const at::Tensor& history, const at::Tensor& history_mask,
                                    double penalty);
// Sets the EOS scores to -inf (used while fewer than min_new_tokens were generated).
at::Tensor suppress_tokens(const at::Tensor& scores, const std::vector<std::int64_t>& token_ids);
at::Tensor apply_temperature(const at::Tensor& scores, double temperature);
// Keeps the k highest scores per row (ties at the k-th value kept), others -inf. k <= 0: no-op.
at::Tensor apply_top_k(const at::Tensor& scores, std::int64_t k);
// Nucleus filtering: keeps the smallest set of highest-probability tokens whose probability sums to >= p
// (at least one token), others -inf. p >= 1: no-op.
at::Tensor apply_top_p(const at::Tensor& scores, double p);

// Draws one token per row from softmax(scores) with `generator` (reproducible for a seed).
at::Tensor sample_tokens(const at::Tensor& scores, std::optional<at::Generator> generator);

struct SamplingSettings {
  bool do_sample = false;  // false: greedy (argmax)
  double temperature = 1.0;
  std::int64_t top_k = 0;
  double top_p = 1.0;
  double repetition_penalty = 1.0;
  std::vector<std::int64_t> suppressed_early;  // token ids masked while suppress is asked (EOS before min_new_tokens)
  std::optional<std::uint64_t> seed;           // sampling only; unset: seeded from the clock
};

// The token choice of one decode step, all on the device: the processors above in transformers' order, then argmax
// or a draw from a generator of the device (cloned from its default one, seeded once). Holds the suppressed ids as a
// device tensor, so a step copies nothing from the host; the work depends on no host value that changes per step.
class TokenSampler {
 public:
  TokenSampler(SamplingSettings settings, const at::Device& device);
  // scores [B, V] float32; history [B, C] every token id so far and history_mask [B, C] (true = a real token) over
  // the whole capacity (padding and future columns false); suppress: mask `suppressed_early`. Returns [B] long.
  at::Tensor choose(const at::Tensor& scores, const at::Tensor& history, const at::Tensor& history_mask,
                    bool suppress);
  const SamplingSettings& settings() const { return settings_; }

 private:
  SamplingSettings settings_;
  at::Tensor suppressed_;  // long [n] on the device, or undefined
  std::optional<at::Generator> generator_;
};

}  // namespace llmstudio::infer
