// generate(): prefill the prompts into a KV cache, then one decode step per token (see generation.h).
#include "llmstudio/infer/generation.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "llmstudio/core/error.h"
#include "llmstudio/platform/platform.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/infer/sampling.h"

namespace llmstudio::infer {

void GenerationConfig::validate() const {
  LLMS_CHECK(max_new_tokens >= 1, "max_new_tokens (max_length_inference) must be >= 1, found ", max_new_tokens);
  LLMS_CHECK(min_new_tokens >= 0 && min_new_tokens <= max_new_tokens, "min_new_tokens (min_length_inference) must be in [0, ",
             max_new_tokens, "], found ", min_new_tokens);
  LLMS_CHECK(num_beams == 1, "num_beams ", num_beams, " is not supported: beam search is not implemented; use num_beams 1 ",
             "(greedy, or sampling with do_sample)");
  LLMS_CHECK(!do_sample || temperature > 0, "temperature must be > 0 when sampling, found ", temperature,
             "; for deterministic output turn sampling off (greedy)");
  LLMS_CHECK(top_k >= 0, "top_k must be >= 0 (0 = off), found ", top_k);
  LLMS_CHECK(top_p > 0 && top_p <= 1, "top_p must be in (0, 1], found ", top_p);
  LLMS_CHECK(repetition_penalty > 0, "repetition_penalty must be > 0 (1 = off), found ", repetition_penalty);
  LLMS_CHECK(max_time >= 0, "max_time must be >= 0 seconds (0 = no limit), found ", max_time);
  LLMS_CHECK(pad_token_id >= 0, "pad_token_id must be >= 0, found ", pad_token_id);
}

GenerationConfig generation_defaults(const std::filesystem::path& model_dir, const model::ModelConfig& config) {
  GenerationConfig g;
  g.eos_token_ids = config.eos_token_ids;
  if (config.pad_token_id) g.pad_token_id = *config.pad_token_id;
  const auto file = model_dir / "generation_config.json";
  if (!std::filesystem::exists(file)) return g;
  const nlohmann::json j = io::parse_json(io::read_file(file), file.string(), io::kModelJsonMaxDepth);
  auto eos = j.find("eos_token_id");
  if (eos != j.end() && !eos->is_null()) {
    g.eos_token_ids.clear();
    if (eos->is_array()) {
      for (const auto& e : *eos) g.eos_token_ids.push_back(e.get<std::int64_t>());
    } else {
      g.eos_token_ids.push_back(eos->get<std::int64_t>());
    }
  }
  auto pad = j.find("pad_token_id");
  if (pad != j.end() && pad->is_number_integer()) g.pad_token_id = pad->get<std::int64_t>();
  return g;
}

std::vector<GeneratedSequence> generate(const model::CausalLM& lm, const std::vector<std::vector<std::int64_t>>& prompts,
                                        const GenerationConfig& cfg, const TokenCallback& on_token) {
  cfg.validate();
  LLMS_CHECK(!prompts.empty(), "generate: no prompts");
  c10::InferenceMode inference;  // no autograd bookkeeping in the decode loop
  platform::DecodeKernelScope kernels;  // attention kernels that need no per-shape plan (see platform.h)
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t B = static_cast<std::int64_t>(prompts.size());
  std::int64_t P = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    LLMS_CHECK(!prompts[i].empty(), "generate: prompt ", i, " has no tokens");
    for (auto t : prompts[i])
      LLMS_CHECK(t >= 0 && t < lm.config().vocab_size, "generate: prompt ", i, " has token id ", t,
                 " outside the vocabulary [0, ", lm.config().vocab_size, ")");
    P = std::max<std::int64_t>(P, static_cast<std::int64_t>(prompts[i].size()));
  }
  const std::int64_t capacity = P + cfg.max_new_tokens;
  const at::Device dev = lm.device();

  // Left-padded prompt ids and the attention mask over prompt + all future tokens (preallocated).
  std::vector<std::int64_t> ids_host(static_cast<size_t>(B * capacity), cfg.pad_token_id), mask_host(ids_host.size(), 0);
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const std::int64_t off = P - static_cast<std::int64_t>(p.size());
    for (size_t j = 0; j < p.size(); ++j) {
      ids_host[static_cast<size_t>(b * capacity + off) + j] = p[j];
      mask_host[static_cast<size_t>(b * capacity + off) + j] = 1;
    }
  }
  at::Tensor history = at::tensor(ids_host, at::kLong).view({B, capacity}).to(dev);
  at::Tensor mask = at::tensor(mask_host, at::kLong).view({B, capacity}).to(dev);

  model::KVCache cache = model::KVCache::allocate(lm.config(), B, capacity, dev, lm.dtype());
  std::optional<at::Generator> gen;
  if (cfg.do_sample) {
    at::Generator g = at::globalContext().defaultGenerator(dev).clone();
    g.set_current_seed(cfg.seed.value_or(static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())));
    gen = g;
  }

  std::vector<GeneratedSequence> out(static_cast<size_t>(B));
  std::vector<bool> finished(static_cast<size_t>(B), false);
  at::Tensor finished_dev = at::zeros({B}, at::TensorOptions().dtype(at::kBool).device(dev));
  at::Tensor pad = at::full({B}, cfg.pad_token_id, at::TensorOptions().dtype(at::kLong).device(dev));

  // Prefill.
  // Without left padding no attention mask is needed (the model's causal path; SDPA's fastest kernels).
  bool padded = false;
  for (const auto& p : prompts) padded = padded || static_cast<std::int64_t>(p.size()) != P;
  auto mask_upto = [&](std::int64_t n) { return padded ? mask.narrow(1, 0, n) : at::Tensor(); };
  at::Tensor logits = lm.forward(history.narrow(1, 0, P), mask_upto(P), {}, &cache);
  cache.advance(P);
  at::Tensor scores = logits.select(1, -1).to(at::kFloat);

  for (std::int64_t step = 0; step < cfg.max_new_tokens; ++step) {
    const std::int64_t len = P + step;  // tokens in history so far
    scores = apply_repetition_penalty(scores, history.narrow(1, 0, len), mask.narrow(1, 0, len), cfg.repetition_penalty);
    if (step < cfg.min_new_tokens) scores = suppress_tokens(scores, cfg.eos_token_ids);
    at::Tensor next;
    if (cfg.do_sample) {
      scores = apply_top_p(apply_top_k(apply_temperature(scores, cfg.temperature), cfg.top_k), cfg.top_p);
      next = sample_tokens(scores, gen);
    } else {
      next = scores.argmax(-1);
    }
    next = at::where(finished_dev, pad, next);
    history.select(1, len).copy_(next);
    mask.select(1, len).fill_(1);

    // The one host synchronisation of a step: the new tokens, for stopping and streaming.
    at::Tensor next_host = next.cpu();
    const auto* nh = next_host.data_ptr<std::int64_t>();
    bool all_done = true;
    const bool out_of_time =
        cfg.max_time > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > cfg.max_time;
    for (std::int64_t b = 0; b < B; ++b) {
      const auto i = static_cast<size_t>(b);
      if (finished[i]) continue;
      out[i].tokens.push_back(nh[b]);
      bool stop = on_token && on_token(i, nh[b]);
      if (std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), nh[b]) != cfg.eos_token_ids.end()) {
        finished[i] = true;
        out[i].finish_reason = "eos";
      } else if (stop) {
        finished[i] = true;
        out[i].finish_reason = "stop";
      } else if (out_of_time) {
        finished[i] = true;
        out[i].finish_reason = "time";
      }
      all_done = all_done && finished[i];
    }
    if (all_done || step + 1 == cfg.max_new_tokens) break;
    finished_dev.copy_(at::tensor(std::vector<std::uint8_t>(finished.begin(), finished.end()), at::kByte).to(at::kBool), true);

    logits = lm.forward(next.view({B, 1}), mask_upto(len + 1), {}, &cache);
    cache.advance(1);
    scores = logits.select(1, -1).to(at::kFloat);
  }
  for (auto& s : out)
    if (s.finish_reason.empty()) s.finish_reason = "length";
  return out;
}

}  // namespace llmstudio::infer
