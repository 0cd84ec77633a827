// model/projection: the fused projection of a group of Linear layers equals the layers side by side (forward and
// every gradient: input, base weights when trained, LoRA A and B), on the CPU in float32 (rel. error < 1e-5,
// largest difference printed); stacked weight storage keeps values and makes the stacked weight a view; the
// packed SwiGLU equals silu(gate) * up. The CUDA/autocast run of the same comparison: tests/tools/kernel_checks.h.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdio>

#include "llmstudio/kernels/swiglu.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/projection.h"

using namespace llmstudio;

namespace {

struct Group {
  std::vector<model::Linear> layers;
  model::ProjectionGroup group() const {
    model::ProjectionGroup g;
    for (const auto& l : layers) g.push_back(&l);
    return g;
  }
  std::vector<at::Tensor> leaves() const {
    std::vector<at::Tensor> t;
    for (const auto& l : layers)
      for (const at::Tensor& p : {l.weight, l.lora_a, l.lora_b})
        if (p.defined() && p.requires_grad()) t.push_back(p);
    return t;
  }
};

// Layers of `outs` outputs on `in` inputs; adapters (rank 3, non-zero B) on the layers flagged in `lora`.
Group make_group(std::int64_t in, const std::vector<std::int64_t>& outs, const std::vector<bool>& lora, bool train_weights) {
  at::manual_seed(3);
  Group g;
  for (size_t i = 0; i < outs.size(); ++i) {
    model::Linear l;
    l.weight = (at::randn({outs[i], in}) / 8).set_requires_grad(train_weights);
    if (lora[i]) {
      l.lora_a = (at::randn({3, in}) / 8).set_requires_grad(true);
      l.lora_b = (at::randn({outs[i], 3}) / 4).set_requires_grad(true);
      l.lora_scaling = 1.5 + static_cast<double>(i);
    }
    g.layers.push_back(l);
  }
  return g;
}

double rel(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).norm() / b.norm().clamp_min(1e-30)).item<double>();
}

// fused_projection vs cat(Linear::forward): output and the gradients of sum(out * r) w.r.t. x and every leaf.
void expect_fused_equals_separate(const Group& g, const char* what) {
  const at::Tensor x = at::randn({2, 5, g.layers[0].weight.size(1)}).set_requires_grad(true);
  std::vector<at::Tensor> inputs{x};
  for (const auto& t : g.leaves()) inputs.push_back(t);
  std::vector<at::Tensor> sep;
  for (const auto& l : g.layers) sep.push_back(l.forward(x, /*training=*/true));
  const at::Tensor ref = at::cat(sep, -1);
  const at::Tensor got = model::fused_projection(g.group(), x);
  ASSERT_EQ(got.sizes(), ref.sizes()) << what;
  const at::Tensor r = at::randn(ref.sizes());
  const auto gref = torch::autograd::grad({(ref * r).sum()}, inputs);
  const auto ggot = torch::autograd::grad({(got * r).sum()}, inputs);
  double worst = rel(got, ref);
  std::printf("%s: output rel %.2e max|d| %.2e\n", what, worst, (got - ref).abs().max().item<double>());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const double e = rel(ggot[i], gref[i]);
    std::printf("%s: grad %zu rel %.2e max|d| %.2e\n", what, i, e, (ggot[i] - gref[i]).abs().max().item<double>());
    worst = std::max(worst, e);
  }
  EXPECT_LT(worst, 1e-5) << what;
}

}  // namespace

TEST(FusedProjection, QkvWithLoraOnSomeMembersEqualsSeparateLayers) {
  expect_fused_equals_separate(make_group(24, {16, 8, 8}, {true, false, true}, false), "q/k/v, LoRA on q and v");
}

TEST(FusedProjection, GateUpWithLoraOnBothEqualsSeparateLayers) {
  expect_fused_equals_separate(make_group(16, {40, 40}, {true, true}, false), "gate/up, LoRA on both");
}

TEST(FusedProjection, SingleLayerWithLora) {
  expect_fused_equals_separate(make_group(40, {16}, {true}, false), "down, LoRA");
}

TEST(FusedProjection, TrainedWeightsWithoutLora) {
  expect_fused_equals_separate(make_group(24, {16, 8, 8}, {false, false, false}, true), "q/k/v, full fine-tuning");
}

TEST(FusedProjection, SkippedOutputKeepsTheGradients) {
  const Group g = make_group(24, {16, 8}, {true, true}, false);
  const at::Tensor x = at::randn({3, 24}).set_requires_grad(true);
  std::vector<at::Tensor> inputs{x};
  for (const auto& t : g.leaves()) inputs.push_back(t);
  const at::Tensor full = model::fused_projection(g.group(), x, /*output_needed=*/true);
  const at::Tensor skipped = model::fused_projection(g.group(), x, /*output_needed=*/false);
  ASSERT_EQ(skipped.sizes(), full.sizes());
  const at::Tensor go = at::randn(full.sizes());
  const auto a = torch::autograd::grad({full}, inputs, {go});
  const auto b = torch::autograd::grad({skipped}, inputs, {go});
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << "gradient " << i;
}

TEST(FusedProjection, OnlyCudaAutocastRunsFused) {
  const Group g = make_group(8, {4, 4}, {false, false}, false);
  EXPECT_FALSE(model::fused_projection_applies(g.group(), at::randn({2, 8}), true));
}

TEST(FusedProjection, StackedStorageKeepsValuesAndMakesTheStackAView) {
  Group g = make_group(12, {6, 2, 2}, {false, false, false}, false);
  std::vector<at::Tensor> before;
  for (const auto& l : g.layers) before.push_back(l.weight.clone());
  const at::Tensor cat_before = at::cat(before, 0);
  std::vector<model::Linear*> ptrs;
  for (auto& l : g.layers) ptrs.push_back(&l);
  model::stack_weight_storage(ptrs);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(at::equal(g.layers[i].weight, before[i])) << "weight " << i;
  const at::Tensor stacked = model::stacked_weight(g.group());
  EXPECT_EQ(stacked.data_ptr(), g.layers[0].weight.data_ptr()) << "the stacked weight should be a view, not a copy";
  EXPECT_TRUE(at::equal(stacked, cat_before));
  // A trained weight: the stack is a (differentiable) concatenation with the same values.
  g.layers[1].weight.set_requires_grad(true);
  const at::Tensor cat = model::stacked_weight(g.group());
  EXPECT_NE(cat.data_ptr(), g.layers[0].weight.data_ptr());
  EXPECT_TRUE(at::equal(cat, cat_before));
  EXPECT_TRUE(cat.requires_grad());
}

TEST(FusedProjection, PackedSwigluIsSiluGateTimesUp) {
  const at::Tensor gu = at::randn({3, 4, 2 * 10}).set_requires_grad(true);
  const at::Tensor got = kernels::swiglu_packed(gu);
  const at::Tensor ref = at::silu(gu.narrow(-1, 0, 10)) * gu.narrow(-1, 10, 10);
  EXPECT_TRUE(at::equal(got, ref));
  const at::Tensor r = at::randn(ref.sizes());
  EXPECT_TRUE(at::equal(torch::autograd::grad({(got * r).sum()}, {gu})[0], torch::autograd::grad({(ref * r).sum()}, {gu})[0]));
}
