// The static-shape decode step (infer/decode_step.h), the device-side sampler and generate() built on them, against
// references: the model's ordinary forward over the whole sequence (logits), the previous generate() loop (dynamic
// KV cache grown each step, masks rebuilt, tokens read back every step; kept here as reference_generate) for greedy
// tokens, finish reasons and the token callback's order, and itself for seeded sampling. fp32 on CPU, random tiny
// models of every supported architecture (Mistral's has a 3-token sliding window, so the window mask is exercised).
// The helpers and the CUDA-graph checks are tests/tools/decode_checks.h's; DecodeStepCuda runs those where libtorch
// sees a CUDA device (skipped elsewhere; on the GPU machine, which has no GoogleTest: llms_decode_tool check).
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

#include "../tools/decode_checks.h"

using namespace llmstudio;
using namespace llmstudio::infer;

namespace {

using namespace llmstudio::decode_checks;

void expect_same(const std::vector<GeneratedSequence>& got, const std::vector<GeneratedSequence>& want,
                 const std::string& what) {
  const std::string diff = compare(got, want);
  EXPECT_TRUE(diff.empty()) << what << ": " << diff;
}

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

// ---- CUDA (skipped without a CUDA device): the graph path, the checks llms_decode_tool runs on the GPU machine. ----

TEST(DecodeStepCuda, GraphChecks) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  for (const auto& c : graph_checks("cuda")) {
    std::printf("%s\n", c.line().c_str());
    EXPECT_TRUE(c.pass()) << c.line();
  }
}
