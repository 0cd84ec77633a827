// generate() (see generation.h) from small parts: the prefill (the model's forward over the left-padded prompts,
// only the last position through lm_head), DecodeStep (infer/decode_step.h: the static-shape step, a CUDA graph on
// CUDA), TokenSampler (infer/sampling.h: the token choice on the device), and here the stop checks, which read each
// step's tokens with one asynchronous device-to-host copy, waited for after the next step was queued.
#include "llmstudio/infer/generation.h"

#include <ATen/ATen.h>
#include <c10/core/Event.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "llmstudio/core/error.h"
#include "llmstudio/platform/platform.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/infer/decode_step.h"
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

namespace {

using Clock = std::chrono::steady_clock;

// The prompts left-padded to the longest one, in a [B, capacity] token history (padding ids after them) and the
// prompt's mask [B, P] (1 = a real token).
struct PaddedPrompts {
  at::Tensor history;  // [B, capacity] long, on the device
  at::Tensor mask;     // [B, P] long, on the device
  std::int64_t length = 0;  // P
  bool padded = false;      // some prompt is shorter than P
};

// The longest prompt's length (checking every prompt's tokens).
std::int64_t longest_prompt(const std::vector<std::vector<std::int64_t>>& prompts, std::int64_t vocab) {
  std::int64_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    LLMS_CHECK(!prompts[i].empty(), "generate: prompt ", i, " has no tokens");
    for (auto t : prompts[i])
      LLMS_CHECK(t >= 0 && t < vocab, "generate: prompt ", i, " has token id ", t, " outside the vocabulary [0, ",
                 vocab, ")");
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(prompts[i].size()));
  }
  return longest;
}

// capacity: the history's columns (at least the longest prompt).
PaddedPrompts pad_prompts(const std::vector<std::vector<std::int64_t>>& prompts, std::int64_t longest,
                          std::int64_t capacity, std::int64_t pad_id, const at::Device& dev) {
  const std::int64_t B = static_cast<std::int64_t>(prompts.size());
  PaddedPrompts p;
  p.length = longest;
  const std::int64_t P = p.length;
  std::vector<std::int64_t> ids(static_cast<size_t>(B * capacity), pad_id), mask(static_cast<size_t>(B * P), 0);
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& prompt = prompts[static_cast<size_t>(b)];
    const std::int64_t off = P - static_cast<std::int64_t>(prompt.size());
    p.padded = p.padded || off > 0;
    for (size_t j = 0; j < prompt.size(); ++j) {
      ids[static_cast<size_t>(b * capacity + off) + j] = prompt[j];
      mask[static_cast<size_t>(b * P + off) + j] = 1;
    }
  }
  p.history = at::tensor(ids, at::kLong).view({B, capacity}).to(dev);
  p.mask = at::tensor(mask, at::kLong).view({B, P}).to(dev);
  return p;
}

// A step's new tokens on their way to the host: one asynchronous copy into a pinned buffer (CUDA) and an event
// recorded after it, so the caller can queue the next step before waiting. On CPU the copy is immediate.
class TokenReadback {
 public:
  TokenReadback(std::int64_t batch, const at::Device& dev)
      : host_(at::empty({batch}, at::TensorOptions().dtype(at::kLong).pinned_memory(dev.is_cuda()))), device_(dev) {
    if (!dev.is_cpu()) event_.emplace(dev.type());
  }
  void issue(const at::Tensor& tokens) {
    host_.copy_(tokens, /*non_blocking=*/true);
    if (event_) event_->record(c10::impl::VirtualGuardImpl(device_.type()).getStream(device_));
  }
  // Waits for the last issue()'s copy only (not for work queued after it).
  const std::int64_t* wait() {
    if (event_) event_->synchronize();
    return host_.data_ptr<std::int64_t>();
  }

 private:
  at::Tensor host_;
  at::Device device_;
  std::optional<c10::Event> event_;
};

// The stop conditions on the host, per row: EOS, the caller's callback, the time limit (the length limit is the
// loop's), in the order and with the reasons of generation.h; and the rows' finished flags on the device (a
// finished row's later tokens are padding), copied there only when a row finishes.
class StopChecks {
 public:
  StopChecks(std::int64_t batch, const GenerationConfig& cfg, const TokenCallback& on_token, Clock::time_point start,
             const at::Device& dev)
      : cfg_(cfg), on_token_(on_token), start_(start), out_(static_cast<size_t>(batch)),
        finished_host_(at::zeros({batch}, at::TensorOptions().dtype(at::kBool).pinned_memory(dev.is_cuda()))),
        finished_(at::zeros({batch}, at::TensorOptions().dtype(at::kBool).device(dev))) {}

  // Row flags on the device: true = finished (its next tokens are padding).
  const at::Tensor& finished() const { return finished_; }

  // One step's tokens (host, one per row); returns whether every row has finished.
  bool record(const std::int64_t* tokens) {
    const bool out_of_time =
        cfg_.max_time > 0 && std::chrono::duration<double>(Clock::now() - start_).count() > cfg_.max_time;
    auto* flags = finished_host_.data_ptr<bool>();
    bool all_done = true, changed = false;
    for (size_t i = 0; i < out_.size(); ++i) {
      if (flags[i]) continue;
      const std::int64_t t = tokens[i];
      out_[i].tokens.push_back(t);
      const bool stop = on_token_ && on_token_(i, t);
      if (std::find(cfg_.eos_token_ids.begin(), cfg_.eos_token_ids.end(), t) != cfg_.eos_token_ids.end())
        out_[i].finish_reason = "eos";
      else if (stop)
        out_[i].finish_reason = "stop";
      else if (out_of_time)
        out_[i].finish_reason = "time";
      flags[i] = !out_[i].finish_reason.empty();
      changed = changed || flags[i];
      all_done = all_done && flags[i];
    }
    // The previous copy from finished_host_ is complete: the readback just waited for came after it on the stream.
    if (changed && !all_done) finished_.copy_(finished_host_, /*non_blocking=*/true);
    return all_done;
  }

  std::vector<GeneratedSequence> results() {
    for (auto& s : out_)
      if (s.finish_reason.empty()) s.finish_reason = "length";
    return std::move(out_);
  }

 private:
  const GenerationConfig& cfg_;
  const TokenCallback& on_token_;
  Clock::time_point start_;
  std::vector<GeneratedSequence> out_;
  at::Tensor finished_host_, finished_;
};

SamplingSettings sampling_settings(const GenerationConfig& cfg) {
  SamplingSettings s;
  s.do_sample = cfg.do_sample;
  s.temperature = cfg.temperature;
  s.top_k = cfg.top_k;
  s.top_p = cfg.top_p;
  s.repetition_penalty = cfg.repetition_penalty;
  s.suppressed_early = cfg.eos_token_ids;
  s.seed = cfg.seed;
  return s;
}

}  // namespace

std::vector<GeneratedSequence> generate(const model::CausalLM& lm, const std::vector<std::vector<std::int64_t>>& prompts,
                                        const GenerationConfig& cfg, const TokenCallback& on_token) {
  cfg.validate();
  LLMS_CHECK(!prompts.empty(), "generate: no prompts");
  c10::InferenceMode inference;  // no autograd bookkeeping in the decode loop
  platform::DecodeKernelScope kernels;  // attention kernels that need no per-shape plan (see platform.h)
  const auto start = Clock::now();
  const at::Device dev = lm.device();
  const std::int64_t B = static_cast<std::int64_t>(prompts.size());
  const std::int64_t P = longest_prompt(prompts, lm.config().vocab_size);
  // A decode step (cache and CUDA graph) an earlier call may have captured: its capacity may exceed P + new tokens.
  const std::shared_ptr<DecodeStep> step_owner = acquire_decode_step(lm, B, P + cfg.max_new_tokens);
  DecodeStep& decode = *step_owner;
  const PaddedPrompts p = pad_prompts(prompts, P, decode.capacity(), cfg.pad_token_id, dev);
  at::Tensor history = p.history;
  TokenSampler sampler(sampling_settings(cfg), dev);
  StopChecks stops(B, cfg, on_token, start, dev);
  TokenReadback readback(B, dev);
  const at::Tensor pad = at::full({B}, cfg.pad_token_id, at::TensorOptions().dtype(at::kLong).device(dev));

  // Prefill. Without left padding no attention mask is needed (the model's causal path; SDPA's fastest kernels).
  // Only the last position's hidden state goes through lm_head.
  const at::Tensor hidden =
      lm.hidden_states(history.narrow(1, 0, P), p.padded ? p.mask : at::Tensor(), {}, &decode.cache());
  decode.cache().advance(P);
  at::Tensor scores = lm.logits(hidden.narrow(1, P - 1, 1)).select(1, 0).to(at::kFloat);
  decode.begin(p.mask);

  for (std::int64_t step = 0; step < cfg.max_new_tokens; ++step) {
    // history and key_mask cover the whole capacity; the columns not written yet are masked out.
    at::Tensor next = sampler.choose(scores, history, decode.key_mask(), step < cfg.min_new_tokens);
    next = at::where(stops.finished(), pad, next);
    history.index_copy_(1, decode.column(), next.view({B, 1}));
    readback.issue(next);
    const bool last = step + 1 == cfg.max_new_tokens;
    // The next step is queued before this step's tokens are read: the device computes while the host checks the
    // stop conditions. Rows that turn out finished get padding next step; their logits are never used.
    if (!last) {
      scores = decode.step(next);
      decode.advance();
    }
    if (stops.record(readback.wait()) || last) break;
  }
  return stops.results();
}

}  // namespace llmstudio::infer
