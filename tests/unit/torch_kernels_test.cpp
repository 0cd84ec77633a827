// The kernels module (src/llmstudio/kernels): on CPU the dispatch of rms_norm / apply_rope / swiglu is exactly the
// plain formula of transformers (LlamaRMSNorm, apply_rotary_pos_emb, silu(gate) * up), forward and gradients, in
// float32 and bfloat16, and decode_attention's reference is scaled_dot_product_attention (boolean mask, GQA); with
// a CUDA device, the CUDA kernels match the references (forward and every gradient, fp32 rel err < 1e-5, bf16/fp16
// < 1e-2: tests/tools/kernel_checks.h, also run by llms_kernels_tool on the GPU machine).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <cstdio>

#include "../tools/kernel_checks.h"

using namespace llmstudio;

namespace {

using Fn = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

// Output and gradients of sum(out * r) w.r.t. every input.
std::vector<at::Tensor> out_and_grads(const Fn& f, const std::vector<at::Tensor>& inputs, std::uint64_t seed) {
  std::vector<at::Tensor> in;
  for (const auto& t : inputs) in.push_back(t.detach().clone().requires_grad_(true));
  at::Tensor y = f(in);
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor r = at::randn(y.sizes(), gen, at::TensorOptions().dtype(at::kFloat));
  std::vector<at::Tensor> res{y.detach()};
  for (auto& g : torch::autograd::grad({(y.to(at::kFloat) * r).sum()}, in)) res.push_back(g);
  return res;
}

// The dispatch and the formula give bit-identical outputs and gradients on CPU.
void expect_identical(const Fn& dispatch, const Fn& formula, const std::vector<at::Tensor>& inputs, const char* what) {
  const auto a = out_and_grads(dispatch, inputs, 7), b = out_and_grads(formula, inputs, 7);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].scalar_type(), b[i].scalar_type()) << what << " tensor " << i;
    const double d = (a[i].to(at::kDouble) - b[i].to(at::kDouble)).abs().max().item<double>();
    std::printf("%s: tensor %zu (%s) max|diff| %.3g\n", what, i, i ? "grad" : "out", d);
    EXPECT_TRUE(at::equal(a[i], b[i])) << what << " tensor " << i << " max|diff| " << d;
  }
}

at::Tensor llama_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {  // transformers' LlamaRMSNorm
  at::Tensor h = x.to(at::kFloat);
  at::Tensor var = h.pow(2).mean(-1, true);
  h = h * at::rsqrt(var + eps);
  return w * h.to(x.scalar_type());
}

at::Tensor rotate_half(const at::Tensor& x) {
  const auto half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

TEST(KernelsCpu, RmsNormIsLlamaRmsNorm) {
  at::manual_seed(11);
  for (auto [xt, wt] : {std::pair{at::kFloat, at::kFloat}, {at::kBFloat16, at::kBFloat16}, {at::kBFloat16, at::kFloat}}) {
    const at::Tensor x = at::randn({3, 7, 576}).to(xt), w = (1 + 0.2 * at::randn({576})).to(wt);
    expect_identical([](const auto& v) { return kernels::rms_norm(v[0], v[1], 1e-6); },
                     [](const auto& v) { return llama_rms_norm(v[0], v[1], 1e-6); }, {x, w}, "rms_norm");
    // Per-head norm on a transposed q view (Qwen3).
    const at::Tensor q = at::randn({2, 5, 3, 64}).to(xt), qw = (1 + 0.2 * at::randn({64})).to(wt);
    expect_identical([](const auto& v) { return kernels::rms_norm(v[0].transpose(1, 2), v[1], 1e-6); },
                     [](const auto& v) { return llama_rms_norm(v[0].transpose(1, 2), v[1], 1e-6); }, {q, qw},
                     "rms_norm transposed");
  }
}

TEST(KernelsCpu, RopeIsRotateHalf) {
  at::manual_seed(12);
  for (auto t : {at::kFloat, at::kBFloat16}) {
    const at::Tensor x = at::randn({2, 9, 3, 64}).to(t);  // [B, T, H, D], used as its [B, H, T, D] transpose
    auto [cos, sin] = model::rope_cos_sin(model::rope_inv_freq(model::RopeConfig{}, 64),
                                          at::randint(0, 512, {2, 9}, at::kLong), t);
    expect_identical([c = cos, s = sin](const auto& v) { return kernels::apply_rope(v[0].transpose(1, 2), c, s); },
                     [c = cos, s = sin](const auto& v) {
                       const at::Tensor q = v[0].transpose(1, 2);
                       return q * c + rotate_half(q) * s;
                     },
                     {x}, "apply_rope");
    EXPECT_TRUE(at::equal(model::apply_rope(x.transpose(1, 2), cos, sin), kernels::apply_rope(x.transpose(1, 2), cos, sin)));
  }
}

TEST(KernelsCpu, SwigluIsSiluTimesUp) {
  at::manual_seed(13);
  for (auto t : {at::kFloat, at::kBFloat16}) {
    const at::Tensor g = (2 * at::randn({4, 5, 96})).to(t), u = at::randn({4, 5, 96}).to(t);
    expect_identical([](const auto& v) { return kernels::swiglu(v[0], v[1]); },
                     [](const auto& v) { return at::silu(v[0]) * v[1]; }, {g, u}, "swiglu");
  }
}

TEST(KernelsCpu, DecodeAttentionReferenceIsSdpa) {
  at::manual_seed(15);
  const std::int64_t B = 3, Hq = 8, Hk = 2, D = 64, C = 37;
  // Row 0: left padding and an unwritten tail; row 1: every column; row 2: the last column only.
  at::Tensor mask = at::zeros({B, C}, at::kBool);
  mask[0].narrow(0, 5, 20).fill_(true);
  mask[1].fill_(true);
  mask[2][C - 1] = true;
  for (auto [t, tol] : {std::pair{at::kFloat, 1e-5}, {at::kBFloat16, 2e-2}}) {
    const at::Tensor q = at::randn({B, 1, Hq, D}).to(t).transpose(1, 2);  // the decode step's transposed view
    const at::Tensor k = at::randn({B, Hk, C, D}).to(t), v = at::randn({B, Hk, C, D}).to(t);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    const at::Tensor ref = kernels::decode_attention_reference(q, k, v, mask, scale);
    const at::Tensor sdpa = at::scaled_dot_product_attention(q, k, v, mask.view({B, 1, 1, C}), 0.0, false, scale,
                                                             /*enable_gqa=*/true)
                                .transpose(1, 2)
                                .reshape({B, 1, Hq * D});
    ASSERT_EQ(ref.sizes(), sdpa.sizes());
    ASSERT_EQ(ref.scalar_type(), t);
    const double d = (ref.to(at::kDouble) - sdpa.to(at::kDouble)).abs().max().item<double>();
    std::printf("decode_attention_reference %s vs sdpa: max|diff| %.3g (tol %.0e)\n", at::toString(t), d, tol);
    EXPECT_LE(d, tol) << at::toString(t);
    // On CPU the dispatch is the reference.
    EXPECT_TRUE(at::equal(kernels::decode_attention(q, k, v, mask, scale), ref));
    EXPECT_FALSE(kernels::decode_attention_kernel_applies(q, k, v, mask));
  }
  // A row without an unmasked key gives zeros (sdpa gives NaN).
  const at::Tensor q = at::randn({1, Hq, 1, D}), k = at::randn({1, Hk, C, D}), v = at::randn({1, Hk, C, D});
  EXPECT_TRUE(at::equal(kernels::decode_attention_reference(q, k, v, at::zeros({1, C}, at::kBool), 0.125),
                        at::zeros({1, 1, Hq * D})));
}

TEST(KernelsCuda, KernelsMatchReferences) {
  if (!(at::hasCUDA() && at::detail::getCUDAHooks().deviceCount() > 0)) GTEST_SKIP() << "no CUDA device (the CUDA kernels run only there)";
  if (!kernels::cuda_kernels_built()) GTEST_SKIP() << "built with LLMS_CUDA_KERNELS=OFF: no CUDA kernels to compare";
  at::manual_seed(14);
  for (const auto& r : kernel_checks::all_cuda_checks(at::Device(at::kCUDA, 0))) {
    std::printf("%s\n", r.line().c_str());
    EXPECT_TRUE(r.pass()) << r.line();
  }
}
