// Logits processing against distributions computed by hand.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "llmstudio/core/error.h"
#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/sampling.h"

using namespace llmstudio;
using namespace llmstudio::infer;

namespace {
const float kInf = std::numeric_limits<float>::infinity();
at::Tensor row(std::vector<float> v) { return at::tensor(v, at::kFloat).view({1, -1}); }
void expect_row(const at::Tensor& t, std::vector<float> expected) {
  ASSERT_EQ(t.size(1), static_cast<std::int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    float got = t[0][static_cast<std::int64_t>(i)].item<float>();
    if (std::isinf(expected[i]))
      EXPECT_TRUE(std::isinf(got) && got < 0) << "index " << i << " got " << got;
    else
      EXPECT_NEAR(got, expected[i], 1e-6) << "index " << i;
  }
}
}  // namespace

TEST(Sampling, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  // Tokens 1 and 3 were seen (3 twice); token 0 only at a padding slot, which must not count.
  at::Tensor scores = row({2.0f, 3.0f, -1.0f, -2.0f, 0.5f});
  at::Tensor history = at::tensor({0, 1, 3, 3}, at::kLong).view({1, -1});
  at::Tensor mask = at::tensor({0, 1, 1, 1}, at::kLong).view({1, -1});
  expect_row(apply_repetition_penalty(scores, history, mask, 2.0), {2.0f, 1.5f, -1.0f, -4.0f, 0.5f});
  expect_row(apply_repetition_penalty(scores, history, mask, 1.0), {2.0f, 3.0f, -1.0f, -2.0f, 0.5f});
}

TEST(Sampling, TemperatureScales) {
  expect_row(apply_temperature(row({1.0f, -2.0f, 4.0f}), 0.5), {2.0f, -4.0f, 8.0f});
  EXPECT_THROW(apply_temperature(row({1.0f}), 0.0), Error);
}

TEST(Sampling, TopKKeepsTheKLargestAndTies) {
  expect_row(apply_top_k(row({1.0f, 5.0f, 3.0f, 4.0f, 2.0f}), 2), {-kInf, 5.0f, -kInf, 4.0f, -kInf});
  // A tie at the k-th value keeps both (as transformers' TopKLogitsWarper: scores < kth are removed).
  expect_row(apply_top_k(row({1.0f, 3.0f, 3.0f, 0.0f}), 1), {-kInf, 3.0f, 3.0f, -kInf});
  expect_row(apply_top_k(row({1.0f, 2.0f}), 0), {1.0f, 2.0f});
}

TEST(Sampling, TopPKeepsTheSmallestNucleus) {
  // probabilities 0.5, 0.25, 0.125, 0.125 (log-probs as scores)
  at::Tensor s = row({std::log(0.5f), std::log(0.25f), std::log(0.125f), std::log(0.125f)});
  // p = 0.7: 0.5 alone < 0.7, 0.5 + 0.25 = 0.75 >= 0.7 -> keep the first two.
  at::Tensor f = apply_top_p(s, 0.7);
  EXPECT_FALSE(std::isinf(f[0][0].item<float>()));
  EXPECT_FALSE(std::isinf(f[0][1].item<float>()));
  EXPECT_TRUE(std::isinf(f[0][2].item<float>()));
  EXPECT_TRUE(std::isinf(f[0][3].item<float>()));
  // p = 0.4: the most probable token alone.
  at::Tensor g = apply_top_p(s, 0.4);
  EXPECT_EQ(at::isinf(g).sum().item<std::int64_t>(), 3);
  EXPECT_FALSE(std::isinf(g[0][0].item<float>()));
  // p = 1: nothing removed.
  EXPECT_EQ(at::isinf(apply_top_p(s, 1.0)).sum().item<std::int64_t>(), 0);
}

TEST(Sampling, SuppressTokens) {
  expect_row(suppress_tokens(row({1.0f, 2.0f, 3.0f}), {2}), {1.0f, 2.0f, -kInf});
}

TEST(Sampling, DrawsFollowTheDistribution) {
  // probabilities 0.7 / 0.2 / 0.1: 20000 seeded draws land within 1.5% of each.
  at::Tensor s = row({std::log(0.7f), std::log(0.2f), std::log(0.1f)}).expand({20000, 3}).contiguous();
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(42);
  at::Tensor draws = sample_tokens(s, gen);
  at::Tensor counts = at::bincount(draws, {}, 3).to(at::kFloat) / 20000.0;
  EXPECT_NEAR(counts[0].item<float>(), 0.7f, 0.015f);
  EXPECT_NEAR(counts[1].item<float>(), 0.2f, 0.015f);
  EXPECT_NEAR(counts[2].item<float>(), 0.1f, 0.015f);
  gen.set_current_seed(42);
  EXPECT_TRUE(at::equal(draws, sample_tokens(s, gen)));
}

TEST(Sampling, GenerationConfigRejectsBadValues) {
  GenerationConfig g;
  g.num_beams = 4;
  EXPECT_THROW(g.validate(), Error);
  g = {};
  g.top_p = 0;
  EXPECT_THROW(g.validate(), Error);
  g = {};
  g.do_sample = true;
  g.temperature = 0;
  EXPECT_THROW(g.validate(), Error);
  g = {};
  g.min_new_tokens = 300;
  EXPECT_THROW(g.validate(), Error);
  EXPECT_NO_THROW(GenerationConfig{}.validate());
}
