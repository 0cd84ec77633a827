// kernels::linear_cross_entropy (chunked lm_head + cross-entropy) against the plain formula at::linear -> float32 ->
// cross_entropy: loss, grad_hidden and grad_weight on random fp32 and bf16 inputs (odd sizes, chunk sizes that do
// not divide N, ignored rows), eager and recomputed gradients, autocast, tied and frozen weights; and
// train::causal_lm_loss_from_hidden against causal_lm_loss(at::linear(...)) for both loss kinds. On CUDA (when
// present) the same comparisons in bf16/fp16 under autocast.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include "llmstudio/core/error.h"
#include "llmstudio/kernels/linear_cross_entropy.h"
#include "llmstudio/train/loss.h"
#include "llmstudio/train/mixed_precision.h"

using namespace llmstudio;
using kernels::LceGrad;
using kernels::LceImpl;
using kernels::LinearCrossEntropyOptions;

namespace {

struct Inputs {
  at::Tensor hidden, weight, labels, weights;
};

// hidden [n, h] and weight [v, h] (scaled so logits spread over a few units), labels with ~1/4 ignored (-100),
// positive random token weights, 0 on ignored rows.
Inputs random_inputs(std::int64_t n, std::int64_t h, std::int64_t v, std::uint64_t seed,
                     const at::Device& device = at::kCPU) {
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(seed);
  Inputs in;
  in.hidden = at::randn({n, h}, gen, at::kFloat);
  in.weight = at::randn({v, h}, gen, at::kFloat) * (2.0 / std::sqrt(static_cast<double>(h)));
  in.labels = at::randint(0, v, {n}, gen, at::kLong);
  in.labels.masked_fill_(at::rand({n}, gen, at::kFloat).lt(0.25), -100);
  in.weights = at::rand({n}, gen, at::kFloat).add_(0.5) * in.labels.ne(-100).to(at::kFloat);
  in.hidden = in.hidden.to(device), in.weight = in.weight.to(device);
  in.labels = in.labels.to(device), in.weights = in.weights.to(device);
  return in;
}

// max |a - b| / max |b|, printed with the largest difference.
double rel_diff(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  const at::Tensor ad = a.to(at::kCPU, at::kDouble), bd = b.to(at::kCPU, at::kDouble);
  const double diff = (ad - bd).abs().max().item<double>();
  const double scale = std::max(bd.abs().max().item<double>(), 1e-30);
  std::printf("  %-28s max|diff| %.3e  max|ref| %.3e  rel %.3e\n", what.c_str(), diff, scale, diff / scale);
  return diff / scale;
}

struct Result {
  at::Tensor loss, grad_h, grad_w;
};

using LossFn = std::function<at::Tensor(const at::Tensor& hidden, const at::Tensor& weight)>;

// fn on fresh leaves of hidden and weight in `dtype` (weight trainable or not); backward of 0.75 * loss.
Result run(const LossFn& fn, const Inputs& in, at::ScalarType dtype, bool weight_grad) {
  const at::Tensor h = in.hidden.to(dtype).detach().requires_grad_(true);
  const at::Tensor w = in.weight.to(dtype).detach().requires_grad_(weight_grad);
  const at::Tensor loss = fn(h, w);
  (loss * 0.75).backward();
  return {loss.detach(), h.grad(), w.grad()};
}

void expect_close(const Result& got, const Result& ref, double tol, const std::string& tag) {
  std::printf("%s\n", tag.c_str());
  EXPECT_LT(rel_diff(got.loss, ref.loss, "loss"), tol) << tag;
  ASSERT_TRUE(got.grad_h.defined()) << tag;
  EXPECT_EQ(got.grad_h.scalar_type(), ref.grad_h.scalar_type()) << tag;
  EXPECT_LT(rel_diff(got.grad_h, ref.grad_h, "grad_hidden"), tol) << tag;
  ASSERT_EQ(got.grad_w.defined(), ref.grad_w.defined()) << tag;
  if (ref.grad_w.defined()) {
    EXPECT_EQ(got.grad_w.scalar_type(), ref.grad_w.scalar_type()) << tag;
    EXPECT_LT(rel_diff(got.grad_w, ref.grad_w, "grad_weight"), tol) << tag;
  }
}

LossFn chunked(const Inputs& in, std::int64_t rows, LceGrad grad) {
  LinearCrossEntropyOptions o;
  o.impl = LceImpl::Chunked, o.chunk_rows = rows, o.grad = grad;
  return [&in, o](const at::Tensor& h, const at::Tensor& w) {
    return kernels::linear_cross_entropy(h, w, in.labels, in.weights, o);
  };
}

LossFn reference(const Inputs& in) {
  return [&in](const at::Tensor& h, const at::Tensor& w) {
    return kernels::linear_cross_entropy_reference(h, w, in.labels, in.weights);
  };
}

std::string tag(const char* what, std::int64_t rows, LceGrad grad) {
  return std::string(what) + " rows=" + std::to_string(rows) + (grad == LceGrad::Recompute ? " recompute" : " eager");
}

}  // namespace

TEST(LinearCrossEntropy, Float32MatchesPlainFormulaForAnyChunking) {
  const Inputs in = random_inputs(37, 19, 53, 11);
  const Result ref = run(reference(in), in, at::kFloat, true);
  for (std::int64_t rows : {1, 8, 36, 37, 0})
    for (LceGrad grad : {LceGrad::Eager, LceGrad::Recompute})
      expect_close(run(chunked(in, rows, grad), in, at::kFloat, true), ref, 1e-5, tag("fp32", rows, grad));
}

TEST(LinearCrossEntropy, BFloat16MatchesPlainFormula) {
  const Inputs in = random_inputs(45, 24, 71, 12);
  const Result ref = run(reference(in), in, at::kBFloat16, true);
  for (std::int64_t rows : {7, 16})
    for (LceGrad grad : {LceGrad::Eager, LceGrad::Recompute})
      expect_close(run(chunked(in, rows, grad), in, at::kBFloat16, true), ref, 2e-2, tag("bf16", rows, grad));
}

TEST(LinearCrossEntropy, FollowsAutocastLikeLinear) {
  // fp32 leaves under CPU bf16 autocast: the kernel casts as at::linear does; gradients come back in fp32.
  const Inputs in = random_inputs(29, 16, 40, 13);
  auto under_autocast = [](const LossFn& fn) {
    return [fn](const at::Tensor& h, const at::Tensor& w) {
      train::AutocastScope autocast(at::kCPU, at::kBFloat16);
      return fn(h, w);
    };
  };
  const Result ref = run(under_autocast(reference(in)), in, at::kFloat, true);
  for (LceGrad grad : {LceGrad::Eager, LceGrad::Recompute}) {
    const Result got = run(under_autocast(chunked(in, 6, grad)), in, at::kFloat, true);
    EXPECT_EQ(got.grad_w.scalar_type(), at::kFloat);
    expect_close(got, ref, 2e-2, tag("autocast bf16", 6, grad));
  }
}

TEST(LinearCrossEntropy, FrozenWeightGetsNoGradient) {
  const Inputs in = random_inputs(33, 12, 30, 14);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const Result ref = run(reference(in), in, dtype, false);
    ASSERT_FALSE(ref.grad_w.defined());
    for (LceGrad grad : {LceGrad::Eager, LceGrad::Recompute})
      expect_close(run(chunked(in, 10, grad), in, dtype, false), ref, dtype == at::kFloat ? 1e-5 : 2e-2,
                   tag(dtype == at::kFloat ? "frozen fp32" : "frozen bf16", 10, grad));
  }
}

TEST(LinearCrossEntropy, TiedWeightSumsBothGradients) {
  // The weight is also the embedding table the hidden states come from (tie_word_embeddings).
  const Inputs in = random_inputs(31, 14, 25, 15);
  const at::Tensor ids = at::randint(0, 25, {31}, at::kLong);
  auto tied = [&ids](const LossFn& fn) {
    return [fn, &ids](const at::Tensor& h, const at::Tensor& w) { return fn(at::embedding(w, ids) + 0.5 * h, w); };
  };
  const Result ref = run(tied(reference(in)), in, at::kFloat, true);
  for (LceGrad grad : {LceGrad::Eager, LceGrad::Recompute})
    expect_close(run(tied(chunked(in, 9, grad)), in, at::kFloat, true), ref, 1e-5, tag("tied fp32", 9, grad));
}

TEST(LinearCrossEntropy, NoGradForwardAndInputChecks) {
  const Inputs in = random_inputs(20, 8, 17, 16);
  at::NoGradGuard no_grad;
  LinearCrossEntropyOptions o;
  o.impl = LceImpl::Chunked, o.chunk_rows = 6;
  const at::Tensor h = in.hidden.requires_grad_(true);
  const at::Tensor got = kernels::linear_cross_entropy(h, in.weight, in.labels, in.weights, o);
  EXPECT_FALSE(got.requires_grad());
  EXPECT_LT(rel_diff(got, kernels::linear_cross_entropy_reference(in.hidden, in.weight, in.labels, in.weights),
                     "no-grad loss"),
            1e-5);
  EXPECT_THROW(kernels::linear_cross_entropy(in.hidden, in.weight.t(), in.labels, in.weights, o), Error);
  EXPECT_THROW(kernels::linear_cross_entropy(in.hidden, in.weight, in.labels.narrow(0, 0, 5), in.weights, o), Error);
}

TEST(LinearCrossEntropy, SecondBackwardNeedsRecompute) {
  // Eager gradients are handed out (and released) by the first backward; Recompute can backward again.
  const Inputs in = random_inputs(21, 8, 15, 20);
  for (LceGrad grad : {LceGrad::Eager, LceGrad::Recompute}) {
    const at::Tensor h = in.hidden.detach().requires_grad_(true);
    const at::Tensor loss = chunked(in, 4, grad)(h, in.weight);
    loss.backward({}, /*retain_graph=*/true);
    const at::Tensor first = h.grad().clone();
    if (grad == LceGrad::Eager) {
      EXPECT_THROW(loss.backward(), Error);
    } else {
      loss.backward();
      EXPECT_LT(rel_diff(h.grad(), 2 * first, "second backward grad_hidden"), 1e-6);
    }
  }
}

TEST(LinearCrossEntropy, AutoChunkRowsFollowTheVocabulary) {
  const LinearCrossEntropyOptions o;  // 256 MiB of float32 logits per chunk
  EXPECT_EQ(kernels::linear_cross_entropy_chunk_rows(8192, 128256, o), 512);
  EXPECT_EQ(kernels::linear_cross_entropy_chunk_rows(8192, 32000, o), 2048);
  EXPECT_EQ(kernels::linear_cross_entropy_chunk_rows(100, 32000, o), 100);
  LinearCrossEntropyOptions fixed;
  fixed.chunk_rows = 4096;
  EXPECT_EQ(kernels::linear_cross_entropy_chunk_rows(8192, 128256, fixed), 4096);
}

namespace {

// Labels [3, 11]: sample 1 has no target at all (all -100), the others a masked prompt and padding.
at::Tensor causal_labels(std::int64_t v) {
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(17);
  at::Tensor labels = at::randint(0, v, {3, 11}, gen, at::kLong);
  labels.narrow(1, 0, 3).fill_(-100);
  labels[1].fill_(-100);
  labels[2].narrow(0, 8, 3).fill_(-100);
  return labels;
}

}  // namespace

TEST(LinearCrossEntropy, CausalLossFromHiddenMatchesCausalLmLoss) {
  const std::int64_t v = 43, hd = 18;
  const at::Tensor labels = causal_labels(v);
  const Inputs in = random_inputs(33, hd, v, 18);
  const at::Tensor hidden3 = in.hidden.view({3, 11, hd});
  for (train::LossKind kind : {train::LossKind::TokenAveraged, train::LossKind::SampleAveraged}) {
    const char* name = kind == train::LossKind::TokenAveraged ? "token-averaged" : "sample-averaged";
    auto plain = [&](const at::Tensor& h, const at::Tensor& w) {
      return train::causal_lm_loss(at::linear(h.view({3, 11, hd}), w), labels, kind);
    };
    const Result ref = run(plain, in, at::kFloat, true);
    for (LceGrad grad : {LceGrad::Eager, LceGrad::Recompute}) {
      LinearCrossEntropyOptions o;
      o.impl = LceImpl::Chunked, o.chunk_rows = 5, o.grad = grad;
      auto fused = [&](const at::Tensor& h, const at::Tensor& w) {
        return train::causal_lm_loss_from_hidden(h.view({3, 11, hd}), w, labels, kind, o);
      };
      expect_close(run(fused, in, at::kFloat, true), ref, 1e-5, tag(name, 5, grad));
    }
    // CPU default (Auto): exactly the plain formula, bit for bit.
    const at::Tensor auto_loss = train::causal_lm_loss_from_hidden(hidden3, in.weight, labels, kind);
    EXPECT_TRUE(at::equal(auto_loss, train::causal_lm_loss(at::linear(hidden3, in.weight), labels, kind))) << name;
    // A batch without any target: 0 with zero gradients (no NaN) from the kernel path.
    LinearCrossEntropyOptions o;
    o.impl = LceImpl::Chunked;
    const at::Tensor h = hidden3.detach().requires_grad_(true);
    const at::Tensor none = train::causal_lm_loss_from_hidden(h, in.weight, at::full_like(labels, -100), kind, o);
    none.backward();
    EXPECT_EQ(none.item<float>(), 0.0f) << name;
    EXPECT_EQ(h.grad().abs().max().item<float>(), 0.0f) << name;
  }
}

TEST(LinearCrossEntropy, CudaBf16AndFp16UnderAutocast) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const Inputs in = random_inputs(1000, 256, 5003, 19, at::Device("cuda"));
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    auto under_autocast = [dtype](const LossFn& fn) {
      return [fn, dtype](const at::Tensor& h, const at::Tensor& w) {
        train::AutocastScope autocast(at::kCUDA, dtype);
        return fn(h, w);
      };
    };
    const Result ref = run(under_autocast(reference(in)), in, at::kFloat, true);
    for (LceGrad grad : {LceGrad::Auto, LceGrad::Recompute})
      for (std::int64_t rows : {96, 0})
        expect_close(run(under_autocast(chunked(in, rows, grad)), in, at::kFloat, true), ref, 2e-2,
                     tag(dtype == at::kHalf ? "cuda fp16" : "cuda bf16", rows, grad));
    const Result frozen_ref = run(under_autocast(reference(in)), in, at::kFloat, false);
    expect_close(run(under_autocast(chunked(in, 96, LceGrad::Auto)), in, at::kFloat, false), frozen_ref, 2e-2,
                 "cuda frozen weight");
  }
}
