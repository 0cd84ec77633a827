// The static-shape decode step (infer/decode_step.h), the device-side sampler and generate() built on them, against
// references: the model's ordinary forward over the whole sequence (logits), the previous generate() loop (dynamic
// KV cache grown each step, masks rebuilt, tokens read back every step; kept here as reference_generate) for greedy
// tokens, finish reasons and the token callback's order, and itself for seeded sampling. fp32 on CPU, random tiny
// models of every supported architecture (Mistral's has a 3-token sliding window, so the window mask is exercised).
// The DecodeStepCuda tests run where libtorch sees a CUDA device (skipped elsewhere): CUDA graphs on against
// LLMS_CUDA_GRAPHS=0 and against the reference, across batch sizes and prompt lengths.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "llmstudio/core/error.h"
#include "llmstudio/infer/decode_step.h"
#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/sampling.h"
#include "llmstudio/model/architecture.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/platform/cuda_graph.h"

using namespace llmstudio;
using namespace llmstudio::infer;
using llmstudio::model::CausalLM;

namespace {

using Prompts = std::vector<std::vector<std::int64_t>>;
constexpr std::int64_t kVocab = 37;

// A small random model of `spec` (as torch_layer_schema_test's, with biases where the family has them).
CausalLM tiny_model(const model::ArchitectureSpec& spec, const std::string& device = "cpu", std::uint64_t seed = 7) {
  model::ModelConfig c;
  c.architecture = spec.hf_architecture;
  c.model_type = spec.model_type;
  c.vocab_size = kVocab;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.attention_bias = spec.qkv_bias || spec.attention_bias_key;
  c.o_proj_bias = spec.attention_bias_key;
  c.mlp_bias = spec.mlp_bias_key;
  if (spec.sliding_window_all_layers) c.sliding_window = 3;
  c.layer_uses_sliding_window.assign(2, spec.sliding_window_all_layers);
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(seed);
  std::map<std::string, at::Tensor> t;
  for (const auto& [name, shape] : model::expected_tensor_shapes(c))
    t[name] = (name.find("norm") != std::string::npos ? 1.0 : 0.0) + 0.5 * at::randn(shape, gen, at::kFloat);
  model::LoadOptions opts;
  opts.device = device;
  return CausalLM::from_tensors(c, t, opts);
}

Prompts random_prompts(const std::vector<std::int64_t>& lengths, std::uint64_t seed) {
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
std::vector<GeneratedSequence> reference_generate(const CausalLM& lm, const Prompts& prompts, const GenerationConfig& cfg,
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

void expect_same(const std::vector<GeneratedSequence>& got, const std::vector<GeneratedSequence>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].tokens) << what << ", row " << i;
    EXPECT_EQ(got[i].finish_reason, want[i].finish_reason) << what << ", row " << i;
  }
}

// An EOS id the greedy reference emits in row `row` after a few tokens (so that row ends early), if any.
std::vector<std::int64_t> eos_from(const std::vector<GeneratedSequence>& ref, size_t row) {
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

}  // namespace

TEST(DecodeStep, StaticStepGivesTheLogitsOfTheFullForward) {
  // Left-padded rows of 5, 2 and 7 prompt tokens, then 6 tokens decoded one at a time; the reference is one
  // forward over all 13 columns with the padding mask. fp32: the keys differ only in masked columns (capacity vs
  // the sequence so far), so the sums differ only in rounding order.
  constexpr double kTol = 2e-5;
  for (const auto& spec : model::supported_architectures()) {
    const CausalLM lm = tiny_model(spec);
    c10::InferenceMode inference;
    const Prompts prompts = random_prompts({5, 2, 7}, 11);
    const std::int64_t B = 3, P = 7, N = 6;
    at::Tensor ids = at::full({B, P + N}, 0, at::kLong), mask = at::zeros({B, P + N}, at::kLong);
    for (std::int64_t b = 0; b < B; ++b) {
      const auto& p = prompts[static_cast<size_t>(b)];
      const std::int64_t n = static_cast<std::int64_t>(p.size());
      ids[b].narrow(0, P - n, n).copy_(at::tensor(p, at::kLong));
      mask[b].narrow(0, P - n, n).fill_(1);
    }
    mask.narrow(1, P, N).fill_(1);
    at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
    gen.set_current_seed(3);
    ids.narrow(1, P, N).copy_(at::randint(3, kVocab, {B, N}, gen, at::kLong));
    const at::Tensor full = lm.forward(ids, mask).to(at::kFloat);  // [B, P + N, V]

    DecodeStep decode(lm, B, P + N);
    const at::Tensor hidden = lm.hidden_states(ids.narrow(1, 0, P), mask.narrow(1, 0, P), {}, &decode.cache());
    decode.cache().advance(P);
    decode.begin(mask.narrow(1, 0, P));
    double worst = (lm.logits(hidden.narrow(1, P - 1, 1)).select(1, 0) - full.select(1, P - 1)).abs().max().item<double>();
    for (std::int64_t j = 0; j < N; ++j) {
      const at::Tensor logits = decode.step(ids.select(1, P + j).contiguous());
      decode.advance();
      ASSERT_EQ(logits.size(0), B);
      ASSERT_EQ(logits.size(1), kVocab);
      worst = std::max(worst, (logits - full.select(1, P + j)).abs().max().item<double>());
    }
    EXPECT_EQ(decode.column().item<std::int64_t>(), P + N);
    EXPECT_TRUE(at::equal(decode.positions().view({B}), mask.sum(1)));
    std::printf("%s: largest |logit difference| static step vs full forward %.3g (tolerance %.0e)\n",
                spec.hf_architecture, worst, kTol);
    EXPECT_LT(worst, kTol) << spec.hf_architecture;
    EXPECT_FALSE(decode.uses_cuda_graphs());
  }
}

TEST(DecodeStep, StepBeforeBeginAndBadPromptMaskAreErrors) {
  const CausalLM lm = tiny_model(model::supported_architectures().front());
  c10::InferenceMode inference;
  DecodeStep decode(lm, 2, 8);
  EXPECT_THROW(decode.step(at::zeros({2}, at::kLong)), Error);
  EXPECT_THROW(decode.begin(at::ones({2, 3}, at::kLong)), Error);  // nothing was prefilled
  EXPECT_THROW(decode.begin(at::ones({3, 3}, at::kLong)), Error);  // wrong batch
}

TEST(DecodeStep, GreedyTokensEqualThePreviousLoop) {
  for (const auto& spec : model::supported_architectures()) {
    const CausalLM lm = tiny_model(spec);
    for (const auto& lengths : std::vector<std::vector<std::int64_t>>{{9, 4, 13}, {6, 6}, {1}, {3, 11, 2, 7}}) {
      const Prompts prompts = random_prompts(lengths, 5 + lengths.size());
      GenerationConfig cfg;
      cfg.max_new_tokens = 16;
      cfg.pad_token_id = 0;
      const std::string what = std::string(spec.hf_architecture) + ", " + std::to_string(lengths.size()) + " prompts";
      const auto plain = reference_generate(lm, prompts, cfg);
      expect_same(generate(lm, prompts, cfg), plain, what + ", length only");
      // Row 0 ends on an EOS; repetition penalty and min_new_tokens on.
      cfg.eos_token_ids = eos_from(plain, 0);
      cfg.repetition_penalty = 1.4;
      cfg.min_new_tokens = 2;
      const auto ref = reference_generate(lm, prompts, cfg);
      expect_same(generate(lm, prompts, cfg), ref, what + ", EOS, penalty, min_new_tokens");
      std::printf("%s: row 0 %zu tokens (%s)\n", what.c_str(), ref[0].tokens.size(), ref[0].finish_reason.c_str());
    }
  }
}

TEST(DecodeStep, TokenCallbackOrderAndStopMatchThePreviousLoop) {
  const CausalLM lm = tiny_model(model::supported_architectures().front());
  const Prompts prompts = random_prompts({4, 8, 6}, 21);
  GenerationConfig cfg;
  cfg.max_new_tokens = 10;
  std::vector<std::pair<std::size_t, std::int64_t>> calls, ref_calls;
  auto logger = [](std::vector<std::pair<std::size_t, std::int64_t>>& log) {
    return [&log](std::size_t row, std::int64_t token) {
      log.emplace_back(row, token);
      return row == 1 && std::count_if(log.begin(), log.end(), [](const auto& c) { return c.first == 1; }) == 3;
    };
  };
  const auto ref = reference_generate(lm, prompts, cfg, logger(ref_calls));
  const auto got = generate(lm, prompts, cfg, logger(calls));
  expect_same(got, ref, "stop callback");
  EXPECT_EQ(got[1].finish_reason, "stop");
  EXPECT_EQ(got[1].tokens.size(), 3u);
  EXPECT_EQ(calls, ref_calls);
}

TEST(DecodeStep, SeededSamplingIsReproducible) {
  for (const auto& spec : model::supported_architectures()) {
    const CausalLM lm = tiny_model(spec);
    const Prompts prompts = random_prompts({5, 9, 3}, 31);
    GenerationConfig cfg;
    cfg.max_new_tokens = 12;
    cfg.do_sample = true;
    cfg.temperature = 0.9;
    cfg.top_k = 12;
    cfg.top_p = 0.95;
    cfg.repetition_penalty = 1.2;
    cfg.min_new_tokens = 4;
    cfg.eos_token_ids = {5, 6};
    cfg.seed = 1234;
    const auto a = generate(lm, prompts, cfg), b = generate(lm, prompts, cfg);
    expect_same(a, b, std::string(spec.hf_architecture) + ", same seed");
    for (const auto& s : a) {
      ASSERT_GE(s.tokens.size(), 4u);  // min_new_tokens: no EOS among the first 4
      for (size_t j = 0; j < 4 && j + 1 < s.tokens.size(); ++j) EXPECT_TRUE(s.tokens[j] != 5 && s.tokens[j] != 6);
    }
    cfg.seed = 1235;
    const auto c = generate(lm, prompts, cfg);
    bool differs = false;
    for (size_t i = 0; i < a.size(); ++i) differs = differs || a[i].tokens != c[i].tokens;
    EXPECT_TRUE(differs) << spec.hf_architecture << ": another seed drew the same 3 x 12 tokens";
  }
}

TEST(DecodeStep, TokenSamplerGreedyIsArgmaxAfterPenaltyAndSuppression) {
  c10::InferenceMode inference;
  SamplingSettings s;
  s.repetition_penalty = 4.0;
  s.suppressed_early = {2};
  TokenSampler sampler(s, at::kCPU);
  const at::Tensor scores = at::tensor({1.0f, 3.0f, 5.0f, 2.5f}).view({1, 4});
  const at::Tensor history = at::tensor({1, 0, 0}, at::kLong).view({1, 3});
  const at::Tensor mask = at::tensor({1, 0, 0}, at::kLong).to(at::kBool).view({1, 3});
  // token 1 was seen: 3 / 4 = 0.75; token 2 suppressed: the argmax is token 3 (2.5).
  EXPECT_EQ(sampler.choose(scores, history, mask, true).item<std::int64_t>(), 3);
  // not suppressed: token 2 (5.0)
  EXPECT_EQ(sampler.choose(scores, history, mask, false).item<std::int64_t>(), 2);
  // the masked history column (token 0) does not count: no penalty on token 0, and token 1 is penalised
  EXPECT_EQ(sampler.choose(at::tensor({3.0f, 3.5f, 0.0f, 0.0f}).view({1, 4}), history, mask, false).item<std::int64_t>(), 0);
}

TEST(GraphedFunction, RunsEagerlyOnCpuAndHonoursTheSwitch) {
  int calls = 0;
  platform::GraphedFunction f([&calls](const std::vector<at::Tensor>& in) {
    ++calls;
    return std::vector<at::Tensor>{in.at(0) * 2 + in.at(1)};
  }, at::kCPU);
  EXPECT_FALSE(f.uses_graphs());
  const at::Tensor a = at::arange(4, at::kFloat), b = at::ones({4});
  EXPECT_TRUE(at::equal(f(4, {a, b}).at(0), a * 2 + b));
  EXPECT_TRUE(at::equal(f(4, {b, a}).at(0), b * 2 + a));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(f.captured(), 0u);
  EXPECT_FALSE(platform::cuda_graphs_enabled(at::kCPU));
  {
    ScopedEnv off("LLMS_CUDA_GRAPHS", "0");
    EXPECT_FALSE(platform::cuda_graphs_enabled(at::Device("cuda:0")));
  }
  if (at::hasCUDA()) {  // (a CPU-only libtorch never captures: then false as well)
    ScopedEnv on("LLMS_CUDA_GRAPHS", nullptr);
    EXPECT_TRUE(platform::cuda_graphs_enabled(at::Device("cuda:0")));
  }
}

// ---- CUDA (skipped without a CUDA device): the graph path. ----

TEST(DecodeStepCuda, GraphReplayGivesTheTokensOfEagerAndOfThePreviousLoop) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  for (const auto& spec : model::supported_architectures()) {
    const CausalLM lm = tiny_model(spec, "cuda");
    {
      c10::InferenceMode inference;
      ScopedEnv on("LLMS_CUDA_GRAPHS", nullptr);
      DecodeStep probe(lm, 1, 4);
      EXPECT_TRUE(platform::cuda_graphs_enabled(lm.device()));
      EXPECT_TRUE(probe.uses_cuda_graphs());
    }
    // Another batch size, another prompt length, another call: each replays its own capture.
    for (const auto& lengths : std::vector<std::vector<std::int64_t>>{{9, 4, 13}, {1}, {3, 11, 2, 7, 5}, {9, 4, 13}}) {
      const Prompts prompts = random_prompts(lengths, 40 + lengths.size());
      GenerationConfig cfg;
      cfg.max_new_tokens = 24;
      cfg.repetition_penalty = 1.3;
      const auto ref = reference_generate(lm, prompts, cfg);
      cfg.eos_token_ids = eos_from(ref, 0);
      const auto ref_eos = reference_generate(lm, prompts, cfg);
      std::vector<GeneratedSequence> graphed, eager;
      {
        ScopedEnv on("LLMS_CUDA_GRAPHS", nullptr);
        graphed = generate(lm, prompts, cfg);
      }
      {
        ScopedEnv off("LLMS_CUDA_GRAPHS", "0");
        eager = generate(lm, prompts, cfg);
      }
      const std::string what = std::string(spec.hf_architecture) + ", " + std::to_string(lengths.size()) + " prompts";
      expect_same(graphed, eager, what + ": graphs vs eager");
      expect_same(graphed, ref_eos, what + ": graphs vs the previous loop");
    }
  }
}

TEST(DecodeStepCuda, GraphStepGivesTheLogitsOfEagerSteps) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const CausalLM lm = tiny_model(model::architecture_spec("MistralForCausalLM"), "cuda");  // sliding window
  c10::InferenceMode inference;
  const std::int64_t B = 2, P = 5, N = 8;
  const at::Tensor ids = at::randint(3, kVocab, {B, P + N}, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
  const at::Tensor mask = at::ones({B, P}, ids.options());
  auto run = [&](const char* graphs) {
    ScopedEnv env("LLMS_CUDA_GRAPHS", graphs);
    DecodeStep decode(lm, B, P + N);
    lm.hidden_states(ids.narrow(1, 0, P), {}, {}, &decode.cache());
    decode.cache().advance(P);
    decode.begin(mask);
    std::vector<at::Tensor> out;
    for (std::int64_t j = 0; j < N; ++j) {
      out.push_back(decode.step(ids.select(1, P + j).contiguous()).clone());
      decode.advance();
    }
    return at::stack(out);
  };
  const at::Tensor graphed = run(nullptr), eager = run("0");
  const double diff = (graphed - eager).abs().max().item<double>();
  constexpr double kTol = 1e-5;  // fp32; the same kernels, though cuBLAS may pick others under capture
  std::printf("largest |logit difference| graph replay vs eager steps: %.3g (tolerance %.0e)\n", diff, kTol);
  EXPECT_LT(diff, kTol);
}

TEST(DecodeStepCuda, SeededSamplingIsReproducibleWithGraphs) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const CausalLM lm = tiny_model(model::supported_architectures().front(), "cuda");
  const Prompts prompts = random_prompts({5, 9, 3}, 31);
  GenerationConfig cfg;
  cfg.max_new_tokens = 20;
  cfg.do_sample = true;
  cfg.temperature = 0.8;
  cfg.top_k = 10;
  cfg.top_p = 0.9;
  cfg.seed = 99;
  ScopedEnv on("LLMS_CUDA_GRAPHS", nullptr);
  expect_same(generate(lm, prompts, cfg), generate(lm, prompts, cfg), "seeded sampling with graphs");
  std::vector<GeneratedSequence> eager;
  {
    ScopedEnv off("LLMS_CUDA_GRAPHS", "0");
    eager = generate(lm, prompts, cfg);
  }
  expect_same(generate(lm, prompts, cfg), eager, "seeded sampling, graphs vs eager");
}
