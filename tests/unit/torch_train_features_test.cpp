// Training features: the float16 loss scaler (torch.amp.GradScaler's rule), the mixed-precision plan and
// autocast scope, gradient checkpointing (gradients equal to the plain backward, LoRA with dropout and full
// fine-tuning, fp32 and under bf16 autocast), differential learning rates (parameter groups), and sequence
// packing (a packed batch's loss equals the token-averaged loss of the same samples unpacked).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <random>

#include "llmstudio/core/error.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/grad_checkpoint.h"
#include "llmstudio/model/lora.h"
#include "llmstudio/train/batching.h"
#include "llmstudio/train/loss.h"
#include "llmstudio/train/mixed_precision.h"
#include "llmstudio/train/optimizer.h"
#include "llmstudio/train/packing.h"

using namespace llmstudio;
using namespace llmstudio::train;

namespace {

// A small random Llama/Mistral-shaped model (fp32, CPU), weights drawn from a seeded generator.
model::CausalLM tiny_model(std::int64_t layers = 2, std::optional<std::int64_t> sliding_window = std::nullopt,
                           std::int64_t hidden = 32) {
  model::ModelConfig c;
  c.architecture = sliding_window ? "MistralForCausalLM" : "LlamaForCausalLM";
  c.model_type = sliding_window ? "mistral" : "llama";
  c.vocab_size = 61;
  c.hidden_size = hidden;
  c.intermediate_size = hidden * 3 / 2;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = hidden / 4;
  c.rms_norm_eps = 1e-5;
  c.sliding_window = sliding_window;
  c.layer_uses_sliding_window.assign(static_cast<std::size_t>(layers), sliding_window.has_value());
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(1234);
  std::map<std::string, at::Tensor> t;
  for (const auto& [name, shape] : model::expected_tensor_shapes(c)) {
    if (name.find("norm") != std::string::npos)
      t[name] = 1.0 + 0.2 * at::randn(shape, gen, at::kFloat);
    else
      t[name] = 0.15 * at::randn(shape, gen, at::kFloat);
  }
  return model::CausalLM::from_tensors(c, t);
}

// Random samples: ids in [1, vocab), labels = ids with the first `prompt` positions masked.
std::vector<tokenizer::PromptSample> random_samples(const std::vector<int>& lengths, std::uint64_t seed) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::vector<tokenizer::PromptSample> out;
  for (int n : lengths) {
    tokenizer::PromptSample s;
    for (int i = 0; i < n; ++i) {
      const auto id = static_cast<std::int32_t>(1 + rng() % 60);
      s.input_ids.push_back(id);
      s.labels.push_back(i < n / 3 ? tokenizer::kIgnoreIndex : id);
      s.attention_mask.push_back(1);
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Gradients of `params` after one forward/backward of a fixed batch; the device RNG is re-seeded first.
std::vector<at::Tensor> grads_of(model::CausalLM& lm, const std::vector<std::pair<std::string, at::Tensor>>& params,
                                 const Batch& b, std::optional<at::ScalarType> autocast = std::nullopt) {
  for (auto& [n, p] : params) p.mutable_grad() = at::Tensor();
  at::manual_seed(77);
  at::Tensor loss;
  {
    AutocastScope ac(at::kCPU, autocast.value_or(at::kBFloat16), autocast.has_value());
    loss = causal_lm_loss(lm.forward(b.input_ids, b.attention_mask), b.labels, LossKind::TokenAveraged);
  }
  loss.backward();
  std::vector<at::Tensor> g;
  for (auto& [n, p] : params) g.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
  return g;
}

double max_diff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].defined(), b[i].defined());
    if (a[i].defined() && b[i].defined()) m = std::max(m, (a[i] - b[i]).abs().max().item<double>());
  }
  return m;
}

}  // namespace

// ---- loss scaler ----------------------------------------------------------------------------------------------

TEST(LossScaler, HalvesAndSkipsOnInfDoublesAfterGrowthInterval) {
  LossScaler s;
  EXPECT_EQ(s.scale(), 65536.0);
  EXPECT_FALSE(s.update(true));  // inf/nan: skip, halve
  EXPECT_EQ(s.scale(), 32768.0);
  EXPECT_EQ(s.skipped_steps(), 1);
  for (int i = 0; i < 1999; ++i) EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 32768.0);  // 1999 good steps: not yet
  EXPECT_EQ(s.good_steps(), 1999);
  EXPECT_TRUE(s.update(false));   // the 2000th
  EXPECT_EQ(s.scale(), 65536.0);
  EXPECT_EQ(s.good_steps(), 0);
  // An overflow in the middle of a run of good steps restarts the count.
  for (int i = 0; i < 1500; ++i) s.update(false);
  EXPECT_FALSE(s.update(true));
  EXPECT_EQ(s.scale(), 32768.0);
  for (int i = 0; i < 1999; ++i) s.update(false);
  EXPECT_EQ(s.scale(), 32768.0);
  s.update(false);
  EXPECT_EQ(s.scale(), 65536.0);
  s.restore(1024.0, 7);
  EXPECT_EQ(s.scale(), 1024.0);
  EXPECT_EQ(s.good_steps(), 7);
  EXPECT_THROW(s.restore(-1.0, 0), Error);
}

TEST(LossScaler, UnscalesGradientsAndFlagsNonFinite) {
  LossScaler s({/*init_scale=*/8.0});
  at::Tensor a = at::ones({3}).set_requires_grad(true), b = at::ones({2, 2}).set_requires_grad(true);
  a.mutable_grad() = at::full({3}, 16.0);
  b.mutable_grad() = at::full({2, 2}, 4.0);
  std::vector<std::pair<std::string, at::Tensor>> params = {{"a", a}, {"b", b}};
  EXPECT_EQ(s.unscale_(params).item<float>(), 0.0f);
  EXPECT_TRUE(a.grad().eq(2.0).all().item<bool>());
  EXPECT_TRUE(b.grad().eq(0.5).all().item<bool>());
  b.mutable_grad()[1][0] = INFINITY;
  EXPECT_EQ(s.unscale_(params).item<float>(), 1.0f);
  b.mutable_grad() = at::full({2, 2}, NAN);
  EXPECT_EQ(s.unscale_(params).item<float>(), 1.0f);
  // A float16 loss that overflows once scaled gives inf gradients; the scaled loss itself stays a plain product.
  EXPECT_EQ(s.scale_loss(at::scalar_tensor(3.0)).item<double>(), 24.0);
}

// ---- mixed-precision plan and autocast --------------------------------------------------------------------------

TEST(MixedPrecision, PlanFollowsConfigAndDevice) {
  using MP = experiment::MixedPrecisionDtype;
  using BD = experiment::BackboneDtype;
  auto off = plan_mixed_precision(false, MP::BFloat16, "cuda:0", BD::Auto, true);
  EXPECT_FALSE(off.enabled);
  auto cuda = plan_mixed_precision(true, MP::BFloat16, "cuda:0", BD::Auto, true);
  EXPECT_TRUE(cuda.enabled);
  EXPECT_EQ(cuda.dtype, at::kBFloat16);
  EXPECT_FALSE(cuda.loss_scaling);
  auto fp16 = plan_mixed_precision(true, MP::Float16, "cuda:0", BD::Float32, false);
  EXPECT_TRUE(fp16.enabled && fp16.loss_scaling);
  EXPECT_EQ(fp16.dtype, at::kHalf);
  // CPU: only with an explicitly low-precision backbone.
  auto cpu_auto = plan_mixed_precision(true, MP::BFloat16, "cpu", BD::Auto, true);
  EXPECT_FALSE(cpu_auto.enabled);
  EXPECT_NE(cpu_auto.note.find("backbone_dtype"), std::string::npos);
  EXPECT_TRUE(plan_mixed_precision(true, MP::BFloat16, "cpu", BD::BFloat16, true).enabled);
  try {
    plan_mixed_precision(true, MP::BFloat16, "cuda:0", BD::Auto, false);
    FAIL() << "bf16 on a device without bf16 must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mixed_precision_dtype=float16"), std::string::npos) << e.what();
  }
}

TEST(MixedPrecision, AutocastScopeCastsMatmulsAndRestores) {
  at::Tensor x = at::randn({4, 8}), w = at::randn({3, 8});
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
  {
    AutocastScope outer(at::kCPU, at::kBFloat16);
    EXPECT_EQ(at::linear(x, w).scalar_type(), at::kBFloat16);
    {
      AutocastScope off(at::kCPU, at::kBFloat16, /*enabled=*/false);
      EXPECT_EQ(at::linear(x, w).scalar_type(), at::kBFloat16);  // a disabled scope changes nothing
    }
    // Norm-like float32 math stays float32 when written in float32 (as rms_norm does).
    EXPECT_EQ((x.pow(2).mean(-1)).scalar_type(), at::kFloat);
  }
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
}

// ---- gradient checkpointing -------------------------------------------------------------------------------------

TEST(GradCheckpoint, LoraGradientsEqualWithDropout) {
  auto lm = tiny_model(3);
  model::LoraConfig lc;
  lc.r = 4;
  lc.dropout = 0.2;  // draws random numbers: the recomputation must see the same ones
  model::attach_lora(lm, lc, 5);
  auto params = model::lora_parameters(lm);
  {
    at::NoGradGuard ng;  // non-zero B so that every adapter gets a gradient
    for (auto& [n, p] : params)
      if (n.find("lora_B") != std::string::npos) p.copy_(0.05 * at::randn(p.sizes()));
  }
  auto samples = random_samples({9, 14, 6}, 3);
  Batch b = collate(samples, {0, 1, 2}, 1.0, 0);
  lm.set_training(true);
  auto plain = grads_of(lm, params, b);
  lm.set_gradient_checkpointing(true);
  auto ckpt = grads_of(lm, params, b);
  const double d = max_diff(plain, ckpt);
  std::printf("LoRA (dropout 0.2) gradients, checkpointed vs plain: max |diff| %.3g over %zu tensors\n", d, params.size());
  EXPECT_LE(d, 1e-6);
  // Without the RNG restore the dropout masks would differ: a different seed per run changes the gradients.
  lm.set_gradient_checkpointing(false);
  at::manual_seed(78);
  for (auto& [n, p] : params) p.mutable_grad() = at::Tensor();
  causal_lm_loss(lm.forward(b.input_ids, b.attention_mask), b.labels, LossKind::TokenAveraged).backward();
  std::vector<at::Tensor> other;
  for (auto& [n, p] : params) other.push_back(p.grad().clone());
  EXPECT_GT(max_diff(plain, other), 1e-4) << "dropout has no effect: the test would not see a wrong RNG restore";
}

TEST(GradCheckpoint, FullFineTuningGradientsEqual) {
  auto lm = tiny_model(3, 5);  // sliding window too
  auto params = lm.named_parameters();
  for (auto& [n, p] : params) p.set_requires_grad(true);
  auto samples = random_samples({12, 7}, 4);
  Batch b = collate(samples, {0, 1}, 1.0, 0);
  lm.set_training(true);
  auto plain = grads_of(lm, params, b);
  lm.set_gradient_checkpointing(true);
  auto ckpt = grads_of(lm, params, b);
  const double d = max_diff(plain, ckpt);
  std::printf("full fine-tuning gradients, checkpointed vs plain: max |diff| %.3g over %zu tensors\n", d, params.size());
  EXPECT_LE(d, 1e-6);
  // Under bf16 autocast the recomputation must run under autocast again (restored on the backward side).
  lm.set_gradient_checkpointing(false);
  auto plain_bf16 = grads_of(lm, params, b, at::kBFloat16);
  lm.set_gradient_checkpointing(true);
  auto ckpt_bf16 = grads_of(lm, params, b, at::kBFloat16);
  const double d16 = max_diff(plain_bf16, ckpt_bf16);
  std::printf("full fine-tuning under bf16 autocast, checkpointed vs plain: max |diff| %.3g (bf16 vs fp32 grads differ by %.3g)\n",
              d16, max_diff(plain, plain_bf16));
  EXPECT_LE(d16, 1e-6);
  EXPECT_GT(max_diff(plain, plain_bf16), 1e-5) << "autocast had no effect";
}

TEST(GradCheckpoint, OnlyInTrainingWithGrad) {
  auto lm = tiny_model(2);
  lm.set_gradient_checkpointing(true);
  auto samples = random_samples({8}, 1);
  Batch b = collate(samples, {0}, 1.0, 0);
  at::Tensor eval_logits, train_logits;
  {
    at::NoGradGuard ng;
    eval_logits = lm.forward(b.input_ids, b.attention_mask);
  }
  lm.set_training(true);
  for (auto& [n, p] : lm.named_parameters()) p.set_requires_grad(true);
  train_logits = lm.forward(b.input_ids, b.attention_mask);
  EXPECT_TRUE(train_logits.requires_grad());
  EXPECT_LE((train_logits.detach() - eval_logits).abs().max().item<double>(), 1e-6);
}

// ---- differential learning rate ---------------------------------------------------------------------------------

TEST(DifferentialLr, H2oSubstringMatchOnBackboneNames) {
  auto t = at::zeros({2, 2});
  std::vector<std::pair<std::string, at::Tensor>> params = {
      {"model.embed_tokens.weight", t},
      {"model.layers.0.self_attn.q_proj.weight", t},
      {"lm_head.weight", t},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", t}};
  auto f = differential_lr_factors(params, {"embed", "head"}, 1e-4, 1e-5);
  EXPECT_DOUBLE_EQ(f[0], 0.1);
  EXPECT_DOUBLE_EQ(f[1], 1.0);
  EXPECT_DOUBLE_EQ(f[2], 0.1);
  EXPECT_DOUBLE_EQ(f[3], 1.0);
  // H2O's names start with "backbone.": that layer name selects every parameter.
  for (double v : differential_lr_factors(params, {"backbone"}, 1e-4, 3e-4)) EXPECT_DOUBLE_EQ(v, 3.0);
  EXPECT_DOUBLE_EQ(differential_lr_factors(params, {"lora_B"}, 1e-4, 2e-4)[3], 2.0);
  for (double v : differential_lr_factors(params, {}, 1e-4, 1e-5)) EXPECT_DOUBLE_EQ(v, 1.0);
}

TEST(DifferentialLr, OptimizerStepsEachGroupAtItsRate) {
  at::Tensor a = at::ones({2, 3}).set_requires_grad(true), b = at::ones({2, 3}).set_requires_grad(true);
  std::vector<std::pair<std::string, at::Tensor>> params = {{"model.embed_tokens.weight", a},
                                                            {"model.layers.0.mlp.up_proj.weight", b}};
  OptimizerConfig oc;
  oc.kind = experiment::OptimizerKind::SGD;
  oc.lr = 0.1;
  Optimizer opt(params, oc);
  opt.set_lr_factors(differential_lr_factors(params, {"embed"}, 0.1, 0.01));
  ASSERT_EQ(opt.lr_factors().size(), 2u);
  a.mutable_grad() = at::full({2, 3}, 2.0);
  b.mutable_grad() = at::full({2, 3}, 2.0);
  const double scheduled = 0.05;  // the schedule's lr at this step scales both groups alike
  opt.step(scheduled);
  EXPECT_NEAR(a[0][0].item<double>(), 1.0 - scheduled * 0.1 * 2.0, 1e-7);  // differential group: 0.01/0.1 of lr
  EXPECT_NEAR(b[0][0].item<double>(), 1.0 - scheduled * 2.0, 1e-7);
  EXPECT_THROW(opt.set_lr_factors({1.0}), Error);
}

// ---- packing ----------------------------------------------------------------------------------------------------

TEST(Packing, FirstFitRows) {
  auto rows = pack_samples({5, 4, 3, 8, 2, 10, 12}, 10);
  // 5 -> r0; 4 -> r0 (9); 3 -> r1; 8 -> r2; 2 -> r1 (5); 10 -> r3; 12 is cut to 10 -> r4
  std::vector<std::vector<std::size_t>> expect = {{0, 1}, {2, 4}, {3}, {5}, {6}};
  EXPECT_EQ(rows, expect);
  EXPECT_THROW(pack_samples({3}, 1), Error);
}

TEST(Packing, CollatePositionsLabelsAndMask) {
  auto samples = random_samples({3, 4}, 9);
  std::vector<std::vector<std::size_t>> rows = {{0, 1}};
  Batch b = collate_packed(samples, rows, {0}, 16, 0);
  ASSERT_EQ(b.input_ids.size(1), 7);
  std::vector<std::int64_t> pos(b.position_ids.data_ptr<std::int64_t>(), b.position_ids.data_ptr<std::int64_t>() + 7);
  EXPECT_EQ(pos, (std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 3}));
  EXPECT_EQ(b.labels[0][0].item<std::int64_t>(), -100);
  EXPECT_EQ(b.labels[0][3].item<std::int64_t>(), -100);  // the second sample's first token is not a target
  EXPECT_EQ(b.labels[0][6].item<std::int64_t>(), samples[1].labels[3]);
  at::Tensor m = b.attention_mask[0][0];
  EXPECT_TRUE(m[4][3].item<bool>());    // within sample 2, causal
  EXPECT_FALSE(m[3][2].item<bool>());   // never across samples
  EXPECT_FALSE(m[3][4].item<bool>());   // never the future
  EXPECT_EQ(b.tokens, 7);
}

TEST(Packing, PackedLossEqualsUnpackedTokenAverage) {
  for (std::optional<std::int64_t> window : {std::optional<std::int64_t>(), std::optional<std::int64_t>(4)}) {
    auto lm = tiny_model(2, window);
    auto samples = random_samples({7, 5, 9, 3, 11, 6}, 21);
    auto rows = pack_samples(sample_lengths(samples), 16);
    ASSERT_LT(rows.size(), samples.size());  // something was actually packed
    std::vector<std::size_t> all_rows(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) all_rows[i] = i;
    at::NoGradGuard ng;
    Batch packed = collate_packed(samples, rows, all_rows, 16, 0);
    const double l_packed = causal_lm_loss(lm.forward(packed.input_ids, packed.attention_mask, packed.position_ids),
                                           packed.labels, LossKind::TokenAveraged).item<double>();
    Batch plain = collate(samples, {0, 1, 2, 3, 4, 5}, 1.0, 0);
    const double l_plain = causal_lm_loss(lm.forward(plain.input_ids, plain.attention_mask), plain.labels,
                                          LossKind::TokenAveraged).item<double>();
    std::printf("packing (%s): %zu samples in %zu rows, loss packed %.6f unpacked %.6f |diff| %.2e\n",
                window ? "sliding window 4" : "full attention", samples.size(), rows.size(), l_packed, l_plain,
                std::abs(l_packed - l_plain));
    EXPECT_LE(std::abs(l_packed - l_plain), 1e-5);
    EXPECT_EQ(packed.tokens, plain.tokens);
    // The block-diagonal mask matters: plain causal attention across the packed samples changes the loss.
    at::Tensor leaky = at::ones({packed.input_ids.size(0), packed.input_ids.size(1)}, at::kLong);
    const double l_leaky = causal_lm_loss(lm.forward(packed.input_ids, leaky, packed.position_ids), packed.labels,
                                          LossKind::TokenAveraged).item<double>();
    EXPECT_GT(std::abs(l_leaky - l_plain), 1e-3) << "samples attending to each other gave the same loss";
  }
}
