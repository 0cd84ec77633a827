// Decode checks shared by the unit test (tests/unit/torch_decode_step_test.cpp) and llms_decode_tool (the GPU
// machine has no GoogleTest): random tiny models of every supported architecture, left-padded prompts, the
// generate() loop as it was before DecodeStep (the reference for greedy tokens, finish reasons and the token
// callback's order), and the CUDA-graph checks: graph replay against eager steps (logits) and against
// LLMS_CUDA_GRAPHS=0 and the reference (tokens) across batch sizes and prompt lengths, and seeded sampling.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "llmstudio/infer/decode_step.h"
#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/sampling.h"
#include "llmstudio/model/architecture.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"
#include "tiny_model.h"

namespace llmstudio::decode_checks {

using infer::GeneratedSequence;
using infer::GenerationConfig;
using infer::TokenCallback;
using infer::apply_repetition_penalty;
using infer::suppress_tokens;
using model::CausalLM;

using Prompts = std::vector<std::vector<std::int64_t>>;
inline constexpr std::int64_t kVocab = 37;

// A small random model of `spec` (tests/tools/tiny_model.h, with biases where the family has them).
inline CausalLM tiny_model(const model::ArchitectureSpec& spec, const std::string& device = "cpu",
                           std::uint64_t seed = 7) {
  return test_models::tiny_causal_lm(spec, kVocab, device, seed, 0.5);
}

inline Prompts random_prompts(const std::vector<std::int64_t>& lengths, std::uint64_t seed) {
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(seed);
  Prompts p;
  for (std::int64_t n : lengths) {
    at::Tensor ids = at::randint(3, kVocab, {n}, gen, at::kLong);
    p.emplace_back(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + n);
  }
  return p;
}

// The generate() loop before DecodeStep (greedy only): the cache grows by a host-side length, the mask and the
// positions are rebuilt each step, and each step's tokens are copied to the host before the next step.
inline std::vector<GeneratedSequence> reference_generate(const CausalLM& lm, const Prompts& prompts,
                                                         const GenerationConfig& cfg,
                                                         const TokenCallback& on_token = {}) {
  c10::InferenceMode inference;
  const std::int64_t B = static_cast<std::int64_t>(prompts.size());
  std::int64_t P = 0;
  bool padded = false;
  for (const auto& p : prompts) P = std::max<std::int64_t>(P, static_cast<std::int64_t>(p.size()));
  for (const auto& p : prompts) padded = padded || static_cast<std::int64_t>(p.size()) != P;
  const std::int64_t capacity = P + cfg.max_new_tokens;
  const at::Device dev = lm.device();
  at::Tensor history = at::full({B, capacity}, cfg.pad_token_id, at::kLong);
  at::Tensor mask = at::zeros({B, capacity}, at::kLong);
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const std::int64_t off = P - static_cast<std::int64_t>(p.size());
    history[b].narrow(0, off, static_cast<std::int64_t>(p.size())).copy_(at::tensor(p, at::kLong));
    mask[b].narrow(0, off, static_cast<std::int64_t>(p.size())).fill_(1);
  }
  history = history.to(dev);
  mask = mask.to(dev);
  model::KVCache cache = model::KVCache::allocate(lm.config(), B, capacity, dev, lm.dtype());
  std::vector<GeneratedSequence> out(static_cast<size_t>(B));
  std::vector<bool> finished(static_cast<size_t>(B), false);
  auto mask_upto = [&](std::int64_t n) { return padded ? mask.narrow(1, 0, n) : at::Tensor(); };
  at::Tensor logits = lm.forward(history.narrow(1, 0, P), mask_upto(P), {}, &cache);
  cache.advance(P);
  at::Tensor scores = logits.select(1, -1).to(at::kFloat);
  for (std::int64_t step = 0; step < cfg.max_new_tokens; ++step) {
    const std::int64_t len = P + step;
    scores = apply_repetition_penalty(scores, history.narrow(1, 0, len), mask.narrow(1, 0, len), cfg.repetition_penalty);
    if (step < cfg.min_new_tokens) scores = suppress_tokens(scores, cfg.eos_token_ids);
    at::Tensor next = scores.argmax(-1);
    for (std::int64_t b = 0; b < B; ++b)
      if (finished[static_cast<size_t>(b)]) next[b] = cfg.pad_token_id;
    history.select(1, len).copy_(next);
    mask.select(1, len).fill_(1);
    at::Tensor nh = next.cpu();
    bool all_done = true;
    for (std::int64_t b = 0; b < B; ++b) {
      const auto i = static_cast<size_t>(b);
      if (finished[i]) continue;
      const std::int64_t t = nh[b].item<std::int64_t>();
      out[i].tokens.push_back(t);
      const bool stop = on_token && on_token(i, t);
      if (std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), t) != cfg.eos_token_ids.end())
        out[i].finish_reason = "eos";
      else if (stop)
        out[i].finish_reason = "stop";
      finished[i] = !out[i].finish_reason.empty();
      all_done = all_done && finished[i];
    }
    if (all_done || step + 1 == cfg.max_new_tokens) break;
    logits = lm.forward(next.view({B, 1}), mask_upto(len + 1), {}, &cache);
    cache.advance(1);
    scores = logits.select(1, -1).to(at::kFloat);
  }
  for (auto& s : out)
    if (s.finish_reason.empty()) s.finish_reason = "length";
  return out;
}

// "" when equal, else what differs first (row, tokens or reason).
inline std::string compare(const std::vector<GeneratedSequence>& got, const std::vector<GeneratedSequence>& want) {
  if (got.size() != want.size()) return std::to_string(got.size()) + " rows vs " + std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].tokens != want[i].tokens) {
      std::string s = "row " + std::to_string(i) + " tokens";
      for (auto t : got[i].tokens) s += " " + std::to_string(t);
      s += " vs";
      for (auto t : want[i].tokens) s += " " + std::to_string(t);
      return s;
    }
    if (got[i].finish_reason != want[i].finish_reason)
      return "row " + std::to_string(i) + " finish " + got[i].finish_reason + " vs " + want[i].finish_reason;
  }
  return "";
}

// An EOS id the greedy reference emits in row `row` after a few tokens (so that row ends early), if any.
inline std::vector<std::int64_t> eos_from(const std::vector<GeneratedSequence>& ref, size_t row) {
  const auto& t = ref[row].tokens;
  for (size_t j = 2; j < t.size(); ++j)
    if (std::find(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(j), t[j]) == t.begin() + static_cast<std::ptrdiff_t>(j))
      return {t[j]};  // first occurrence at j: the row ends there
  return {};
}

// Sets (or unsets, value nullptr) an environment variable for a scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
      had_ = true;
    }
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};


// ---- CUDA graph checks (need a CUDA device): one line each, "ok" or "FAIL" and what differed. ----

struct Check {
  std::string name;
  std::string failure;  // "" = passed
  bool pass() const { return failure.empty(); }
  std::string line() const { return (pass() ? "ok   " : "FAIL ") + name + (pass() ? "" : ": " + failure); }
};

// DecodeStep logits over N steps (row 1 left-padded), graphed vs LLMS_CUDA_GRAPHS=0, fp32 on `device`.
inline Check graph_logits_match_eager(const model::ArchitectureSpec& spec, const std::string& device, double tol) {
  const CausalLM lm = tiny_model(spec, device);
  c10::InferenceMode inference;
  const std::int64_t B = 2, P = 5, N = 8;
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(9);
  const at::Tensor ids = at::randint(3, kVocab, {B, P + N}, gen, at::kLong).to(lm.device());
  at::Tensor mask = at::ones({B, P}, ids.options());
  mask[1].narrow(0, 0, 2).fill_(0);  // row 1 left-padded
  auto run = [&](const char* graphs) {
    ScopedEnv env("LLMS_CUDA_GRAPHS", graphs);
    infer::DecodeStep decode(lm, B, P + N);
    (void)lm.hidden_states(ids.narrow(1, 0, P), mask, {}, &decode.cache());
    decode.cache().advance(P);
    decode.begin(mask);
    std::vector<at::Tensor> out;
    for (std::int64_t j = 0; j < N; ++j) {
      out.push_back(decode.step(ids.select(1, P + j).contiguous()).clone());
      decode.advance();
    }
    return std::make_pair(at::stack(out), decode.uses_cuda_graphs());
  };
  const auto [graphed, used_graphs] = run(nullptr);
  const auto [eager, used_none] = run("0");
  Check c{std::string(spec.hf_architecture) + " " + device + ": step logits, graph replay vs eager", ""};
  const double diff = (graphed - eager).abs().max().item<double>();
  char buf[128];
  std::snprintf(buf, sizeof buf, " (largest |difference| %.3g, tolerance %.0e)", diff, tol);
  c.name += buf;
  if (!used_graphs) c.failure = "the DecodeStep did not use a CUDA graph";
  else if (used_none) c.failure = "LLMS_CUDA_GRAPHS=0 did not turn graphs off";
  else if (!(diff <= tol)) c.failure = "logits differ";
  return c;
}

// Greedy generate() with graphs vs LLMS_CUDA_GRAPHS=0 vs the reference loop, for several batch sizes and prompt
// lengths in a row (each call captures its own graph), with an EOS ending row 0 early and a repetition penalty.
inline Check graph_greedy_matches(const model::ArchitectureSpec& spec, const std::string& device) {
  const CausalLM lm = tiny_model(spec, device);
  Check c{std::string(spec.hf_architecture) + " " + device + ": greedy tokens, graphs vs eager vs previous loop", ""};
  for (const auto& lengths : std::vector<std::vector<std::int64_t>>{{9, 4, 13}, {1}, {3, 11, 2, 7, 5}, {9, 4, 13}}) {
    const Prompts prompts = random_prompts(lengths, 40 + lengths.size());
    GenerationConfig cfg;
    cfg.max_new_tokens = 24;
    cfg.repetition_penalty = 1.3;
    cfg.eos_token_ids = eos_from(reference_generate(lm, prompts, cfg), 0);
    const auto ref = reference_generate(lm, prompts, cfg);
    std::vector<GeneratedSequence> graphed, eager;
    {
      ScopedEnv on("LLMS_CUDA_GRAPHS", nullptr);
      graphed = infer::generate(lm, prompts, cfg);
    }
    {
      ScopedEnv off("LLMS_CUDA_GRAPHS", "0");
      eager = infer::generate(lm, prompts, cfg);
    }
    const std::string where = std::to_string(lengths.size()) + " prompts: ";
    if (auto d = compare(graphed, eager); !d.empty()) {
      c.failure = where + "graphs vs eager: " + d;
      break;
    }
    if (auto d = compare(graphed, ref); !d.empty()) {
      c.failure = where + "graphs vs previous loop: " + d;
      break;
    }
  }
  return c;
}

// Seeded sampling with graphs: the same seed twice gives the same tokens, and the same as eager.
inline Check graph_sampling_reproducible(const model::ArchitectureSpec& spec, const std::string& device) {
  const CausalLM lm = tiny_model(spec, device);
  Check c{std::string(spec.hf_architecture) + " " + device + ": seeded sampling with graphs", ""};
  const Prompts prompts = random_prompts({5, 9, 3}, 31);
  GenerationConfig cfg;
  cfg.max_new_tokens = 20;
  cfg.do_sample = true;
  cfg.temperature = 0.8;
  cfg.top_k = 10;
  cfg.top_p = 0.9;
  cfg.repetition_penalty = 1.2;
  cfg.min_new_tokens = 3;
  cfg.seed = 99;
  std::vector<GeneratedSequence> a, b, eager;
  {
    ScopedEnv on("LLMS_CUDA_GRAPHS", nullptr);
    a = infer::generate(lm, prompts, cfg);
    b = infer::generate(lm, prompts, cfg);
  }
  {
    ScopedEnv off("LLMS_CUDA_GRAPHS", "0");
    eager = infer::generate(lm, prompts, cfg);
  }
  if (auto d = compare(a, b); !d.empty()) c.failure = "same seed twice: " + d;
  else if (auto e = compare(a, eager); !e.empty()) c.failure = "graphs vs eager: " + e;
  return c;
}

// A model's decode steps are kept between generate() calls (infer::acquire_decode_step): after a call captured a
// graph, attaching a LoRA adapter (non-zero B) and changing its scaling must not replay the stale graph. Greedy
// tokens with graphs vs LLMS_CUDA_GRAPHS=0 vs the previous loop, before and after each change.
inline Check graph_follows_adapter_changes(const model::ArchitectureSpec& spec, const std::string& device) {
  CausalLM lm = tiny_model(spec, device);
  Check c{std::string(spec.hf_architecture) + " " + device + ": greedy tokens after adapter changes, graphs vs eager", ""};
  const Prompts prompts = random_prompts({6, 10}, 77);
  GenerationConfig cfg;
  cfg.max_new_tokens = 16;
  auto same = [&](const std::string& when) {
    std::vector<GeneratedSequence> graphed, eager;
    {
      ScopedEnv on("LLMS_CUDA_GRAPHS", nullptr);
      graphed = infer::generate(lm, prompts, cfg);
    }
    {
      ScopedEnv off("LLMS_CUDA_GRAPHS", "0");
      eager = infer::generate(lm, prompts, cfg);
    }
    const auto ref = reference_generate(lm, prompts, cfg);
    if (auto d = compare(graphed, eager); !d.empty()) c.failure = when + ": graphs vs eager: " + d;
    else if (auto e = compare(graphed, ref); !e.empty()) c.failure = when + ": graphs vs previous loop: " + e;
    return c.failure.empty();
  };
  if (!same("before the adapter")) return c;
  model::LoraConfig lora;
  lora.r = 4;
  lora.alpha = 8;
  lora.dropout = 0;
  model::attach_lora(lm, lora, 5);
  {
    at::NoGradGuard no_grad;
    for (auto& l : lm.layers())
      for (model::Linear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
        if (lin->lora_b.defined()) lin->lora_b.normal_(0, 0.5);  // B = 0 would leave the output unchanged
  }
  if (!same("with the adapter")) return c;
  for (auto& l : lm.layers())
    for (model::Linear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) lin->lora_scaling *= 3;
  same("with the adapter's scaling tripled");
  return c;
}

// Every check above for every supported architecture on `device`.
inline std::vector<Check> graph_checks(const std::string& device) {
  std::vector<Check> all;
  for (const auto& spec : model::supported_architectures()) {
    all.push_back(graph_logits_match_eager(spec, device, 1e-5));
    all.push_back(graph_greedy_matches(spec, device));
    all.push_back(graph_sampling_reproducible(spec, device));
    all.push_back(graph_follows_adapter_changes(spec, device));
  }
  return all;
}

}  // namespace llmstudio::decode_checks
