// Comparisons of the kernels module's dispatch (kernels::rms_norm / apply_rope / swiglu / ...) with its plain libtorch
// references on one device, forward and every input gradient (decode_attention: forward only, inference), on fresh
// random inputs: the relative error ||a - b|| / ||b|| (float64) and the largest absolute difference per tensor.
// Shared by the unit test (tests/unit/torch_kernels_test.cpp) and llms_kernels_tool (the GPU machine has no
// GoogleTest).
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "llmstudio/kernels/backend.h"
#include "llmstudio/kernels/decode_attention.h"
#include "llmstudio/kernels/linear_cross_entropy.h"
#include "llmstudio/kernels/rms_norm.h"
#include "llmstudio/kernels/rope.h"
#include "llmstudio/kernels/swiglu.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/model_config.h"
#include "llmstudio/model/projection.h"
#include "llmstudio/model/rope.h"

namespace llmstudio::kernel_checks {

struct Diff {
  std::string tensor;
  double rel = 0, max_abs = 0;
};

struct Result {
  std::string name;
  double tol = 0;
  std::vector<Diff> diffs;
  bool finite = true;
  bool pass() const {
    if (!finite) return false;
    for (const auto& d : diffs)
      if (!(d.rel <= tol)) return false;
    return true;
  }
  double worst() const {
    double w = 0;
    for (const auto& d : diffs) w = std::max(w, d.rel);
    return w;
  }
  std::string line() const {
    std::string s = (pass() ? "ok   " : "FAIL ") + name + " (tol " + std::to_string(tol) + "):";
    char buf[96];
    for (const auto& d : diffs) {
      std::snprintf(buf, sizeof buf, " %s rel %.2e max|d| %.2e;", d.tensor.c_str(), d.rel, d.max_abs);
      s += buf;
    }
    return s + (finite ? "" : " NON-FINITE");
  }
};

inline std::string ts(at::ScalarType t) { return at::toString(t); }

inline double tolerance(at::ScalarType t) { return t == at::kFloat ? 1e-5 : 1e-2; }

inline Diff diff(const std::string& name, const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor ad = a.to(at::kDouble), bd = b.to(at::kDouble);
  const double denom = bd.norm().item<double>();
  return {name, (ad - bd).norm().item<double>() / (denom > 0 ? denom : 1.0), (ad - bd).abs().max().item<double>()};
}

// The op applied to leaf tensors (views such as transposes are made inside, so gradients reach the leaves).
using Op = std::function<at::Tensor(const std::vector<at::Tensor>& leaves)>;

// Output and the gradients of sum(out * r) for every leaf, computed with the kernels or with the references.
inline std::vector<at::Tensor> run(const Op& op, const std::vector<at::Tensor>& leaves, const at::Tensor& r,
                                   bool reference) {
  const bool before = kernels::reference_only();
  kernels::set_reference_only(reference);
  std::vector<at::Tensor> in;
  for (const auto& l : leaves) in.push_back(l.detach().clone().requires_grad_(true));
  at::Tensor out = op(in);
  kernels::set_reference_only(before);
  std::vector<at::Tensor> res{out.detach()};
  for (auto& g : torch::autograd::grad({(out.to(at::kFloat) * r).sum()}, in)) res.push_back(g);
  return res;
}

// Kernel vs reference (forward and gradients). Every output must be written and finite.
inline Result compare(const std::string& name, const Op& op, const std::vector<at::Tensor>& leaves,
                      const std::vector<std::string>& names, double tol) {
  at::Tensor probe;
  {
    at::NoGradGuard ng;
    probe = op(leaves);
  }
  const at::Tensor r = at::randn(probe.sizes(), probe.options().dtype(at::kFloat));
  const auto ref = run(op, leaves, r, /*reference=*/true);
  const auto got = run(op, leaves, r, /*reference=*/false);
  Result res{name, tol, {}, true};
  res.diffs.push_back(diff("y", got[0], ref[0]));
  res.finite = res.finite && got[0].isfinite().all().item<bool>() && got[0].scalar_type() == ref[0].scalar_type();
  for (size_t i = 0; i < names.size(); ++i) {
    res.diffs.push_back(diff("d" + names[i], got[i + 1], ref[i + 1]));
    res.finite = res.finite && got[i + 1].isfinite().all().item<bool>();
  }
  return res;
}

inline at::TensorOptions opts(at::Device dev, at::ScalarType t) { return at::TensorOptions().device(dev).dtype(t); }

// x [rows..., D] (or, with `heads`, a [B, H, T, D] transposed view of [B, T, H, D], as the Qwen3 q/k norms).
inline Result check_rms_norm(at::Device dev, at::ScalarType xt, at::ScalarType wt, std::vector<std::int64_t> shape,
                             bool transposed_heads = false) {
  const at::Tensor x = at::randn(shape, opts(dev, xt));
  const at::Tensor w = (1.0 + 0.2 * at::randn({shape.back()}, opts(dev, at::kFloat))).to(wt);
  Op op = [transposed_heads](const std::vector<at::Tensor>& v) {
    const at::Tensor xi = transposed_heads ? v[0].transpose(1, 2) : v[0];
    return kernels::rms_norm(xi, v[1], 1e-6);
  };
  std::string name = "rms_norm x" + ts(xt) + (transposed_heads ? " transposed" : "") + " w" +
                     ts(wt) + " " + c10::str(at::IntArrayRef(shape));
  return compare(name, op, {x, w}, {"x", "w"}, tolerance(xt));
}

// q [B, H, T, D] as the model makes it: a transposed view of [B, T, H, D]; cos/sin from model::rope_cos_sin at
// random positions, in `ct` (float32 with bf16 q is the autocast case).
inline Result check_rope(at::Device dev, at::ScalarType xt, at::ScalarType ct, std::int64_t B, std::int64_t H,
                         std::int64_t T, std::int64_t D) {
  const at::Tensor x = at::randn({B, T, H, D}, opts(dev, xt));
  const at::Tensor pos = at::randint(0, 4096, {B, T}, opts(dev, at::kLong));
  model::RopeConfig rc;
  auto [cos, sin] = model::rope_cos_sin(model::rope_inv_freq(rc, D).to(dev), pos, ct);
  Op op = [cos, sin](const std::vector<at::Tensor>& v) { return kernels::apply_rope(v[0].transpose(1, 2), cos, sin); };
  const std::string name = "apply_rope x" + ts(xt) + " cos" + ts(ct) + " [" + std::to_string(B) +
                           "," + std::to_string(H) + "," + std::to_string(T) + "," + std::to_string(D) + "] transposed";
  return compare(name, op, {x}, {"x"}, tolerance(xt));
}

inline Result check_swiglu(at::Device dev, at::ScalarType t, std::vector<std::int64_t> shape) {
  const at::Tensor g = 2.0 * at::randn(shape, opts(dev, t)), u = at::randn(shape, opts(dev, t));
  Op op = [](const std::vector<at::Tensor>& v) { return kernels::swiglu(v[0], v[1]); };
  return compare("swiglu " + ts(t) + " " + c10::str(at::IntArrayRef(shape)), op, {g, u}, {"gate", "up"},
                 tolerance(t));
}

// gate_up [..., 2I] as the fused gate/up projection makes it.
inline Result check_swiglu_packed(at::Device dev, at::ScalarType t, std::vector<std::int64_t> shape) {
  const at::Tensor gu = 2.0 * at::randn(shape, opts(dev, t));
  Op op = [](const std::vector<at::Tensor>& v) { return kernels::swiglu_packed(v[0]); };
  return compare("swiglu_packed " + ts(t) + " " + c10::str(at::IntArrayRef(shape)), op, {gu}, {"gate_up"}, tolerance(t));
}

// q as the fused q/k/v projection makes it: a column slice of [B, T, (H + extra) * D], viewed [B, H, T, D].
inline Result check_rope_slice(at::Device dev, at::ScalarType t, std::int64_t B, std::int64_t H, std::int64_t T,
                               std::int64_t D) {
  const at::Tensor x = at::randn({B, T, (H + 2) * D}, opts(dev, t));
  const at::Tensor pos = at::randint(0, 4096, {B, T}, opts(dev, at::kLong));
  auto [cos, sin] = model::rope_cos_sin(model::rope_inv_freq(model::RopeConfig{}, D).to(dev), pos, at::kFloat);
  Op op = [cos, sin, B, H, T, D](const std::vector<at::Tensor>& v) {
    return kernels::apply_rope(v[0].narrow(-1, 0, H * D).view({B, T, H, D}).transpose(1, 2), cos, sin);
  };
  return compare("apply_rope " + ts(t) + " column slice of a fused projection", op, {x}, {"x"}, tolerance(t));
}

// Autocast on a device type for a scope (as torch.autocast).
struct AutocastScope {
  at::DeviceType type;
  bool was;
  at::ScalarType dtype_was;
  AutocastScope(at::DeviceType t, at::ScalarType dtype)
      : type(t), was(at::autocast::is_autocast_enabled(t)), dtype_was(at::autocast::get_autocast_dtype(t)) {
    at::autocast::set_autocast_enabled(t, true);
    at::autocast::set_autocast_dtype(t, dtype);
  }
  ~AutocastScope() {
    at::autocast::set_autocast_enabled(type, was);
    at::autocast::set_autocast_dtype(type, dtype_was);
    at::autocast::clear_cache();
  }
};

// model::fused_projection vs the members' Linear::forward side by side, under bf16 autocast (the reference run
// takes Linear::forward): a q/k/v-like group with LoRA on the first and last member and trained weights, and a
// gate/up-like pair (outputs >= 4x inputs: the single-GEMM path over [x | h] and [W | B]) with frozen weights.
inline Result check_fused_projection(at::Device dev, std::int64_t in, const std::vector<std::int64_t>& outs,
                                     const std::vector<bool>& lora, bool train_weights) {
  const std::int64_t r = 8;
  const size_t n = outs.size();
  std::vector<at::Tensor> leaves{at::randn({3, 37, in}, opts(dev, at::kBFloat16))}, weights;
  std::vector<std::string> names{"x"};
  for (size_t i = 0; i < n; ++i) {
    weights.push_back((at::randn({outs[i], in}, opts(dev, at::kFloat)) / 16).to(at::kBFloat16));
    if (train_weights) {
      leaves.push_back(weights.back());
      names.push_back("W" + std::to_string(i));
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (lora[i]) {
      leaves.push_back(at::randn({r, in}, opts(dev, at::kFloat)) / 16);
      leaves.push_back(at::randn({outs[i], r}, opts(dev, at::kFloat)) / 4);
      names.push_back("A" + std::to_string(i));
      names.push_back("B" + std::to_string(i));
    }
  Op op = [n, lora, train_weights, weights](const std::vector<at::Tensor>& v) {
    const AutocastScope autocast(v[0].device().type(), at::kBFloat16);
    std::vector<model::Linear> l(n);
    size_t next = 1;
    for (size_t i = 0; i < n; ++i) l[i].weight = train_weights ? v[next++] : weights[i];
    for (size_t i = 0; i < n; ++i) {
      if (!lora[i]) continue;
      l[i].lora_a = v[next++];
      l[i].lora_b = v[next++];
      l[i].lora_scaling = 2.0 + static_cast<double>(i);
    }
    model::ProjectionGroup group;
    for (const auto& li : l) group.push_back(&li);
    if (model::fused_projection_applies(group, v[0], /*training=*/true)) return model::fused_projection(group, v[0]);
    std::vector<at::Tensor> parts;
    for (const auto& li : l) parts.push_back(li.forward(v[0], true));
    return at::cat(parts, -1);
  };
  const std::string name = "fused_projection in " + std::to_string(in) + " outs " + c10::str(at::IntArrayRef(outs)) +
                           (train_weights ? " trained weights" : " frozen weights") + ", bf16 autocast";
  return compare(name, op, leaves, names, tolerance(at::kBFloat16));
}

// The chunked lm_head + cross-entropy (with the fused CUDA row kernel) vs the plain formula: hidden [N, H], weight
// [V, H] (trainable), labels with ignored rows, token-averaging weights; small chunks so that several run.
inline Result check_linear_cross_entropy(at::Device dev, at::ScalarType t, std::int64_t N, std::int64_t H,
                                         std::int64_t V) {
  const at::Tensor h = at::randn({N, H}, opts(dev, t)), w = 0.05 * at::randn({V, H}, opts(dev, t));
  at::Tensor labels = at::randint(0, V, {N}, opts(dev, at::kLong));
  labels.masked_fill_(at::rand({N}, opts(dev, at::kFloat)).lt(0.2), -100);
  const at::Tensor tw = labels.ne(-100).to(at::kFloat) / labels.ne(-100).sum().clamp_min(1).to(at::kFloat);
  Op op = [labels, tw](const std::vector<at::Tensor>& v) {
    if (kernels::reference_only()) return kernels::linear_cross_entropy_reference(v[0], v[1], labels, tw);
    kernels::LinearCrossEntropyOptions o;
    o.chunk_rows = 64;
    return kernels::linear_cross_entropy(v[0], v[1], labels, tw, o);
  };
  return compare("linear_cross_entropy " + ts(t) + " N" + std::to_string(N) + " H" + std::to_string(H) + " V" +
                     std::to_string(V),
                 op, {h, w}, {"hidden", "weight"}, tolerance(t));
}

// Forward only (inference kernels): the op through the dispatch vs the reference output; finite and of its dtype.
inline Result compare_forward(const std::string& name, const at::Tensor& got, const at::Tensor& ref, double tol) {
  Result res{name, tol, {diff("y", got, ref)}, true};
  res.finite = got.isfinite().all().item<bool>() && got.scalar_type() == ref.scalar_type() && got.sizes() == ref.sizes();
  return res;
}

// Decode attention as generation runs it: q a transposed view of [B, 1, Hq, D], random k/v caches [B, Hk, C, D], a
// key mask with per-row left padding and unwritten tail columns (at least one true per row; with last_only, row 0
// attends to the last column only). The CUDA path in `t` vs the reference on float64 copies of the same inputs
// (cast to `t` for the comparison).
inline Result check_decode_attention(at::Device dev, at::ScalarType t, std::int64_t B, std::int64_t Hq,
                                     std::int64_t Hk, std::int64_t D, std::int64_t C, bool last_only = false) {
  at::NoGradGuard ng;
  const at::Tensor q = at::randn({B, 1, Hq, D}, opts(dev, t)).transpose(1, 2);
  const at::Tensor k = at::randn({B, Hk, C, D}, opts(dev, t)), v = at::randn({B, Hk, C, D}, opts(dev, t));
  at::Tensor mask = at::zeros({B, C}, opts(dev, at::kBool));
  for (std::int64_t b = 0; b < B; ++b) {
    if (last_only && b == 0) {
      mask[b][C - 1] = true;
      continue;
    }
    const std::int64_t pad = (b * 7) % (C / 3 + 1), tail = (b * 13 + 5) % (C / 3 + 1);
    const std::int64_t end = std::max(pad + 1, C - tail);
    mask[b].narrow(0, pad, end - pad).fill_(true);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const at::Tensor got = kernels::decode_attention(q, k, v, mask, scale);
  const at::Tensor ref =
      kernels::decode_attention_reference(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble), mask, scale).to(t);
  const std::string name = "decode_attention " + ts(t) + " B" + std::to_string(B) + " Hq" + std::to_string(Hq) + " Hk" +
                     std::to_string(Hk) + " D" + std::to_string(D) + " C" + std::to_string(C) +
                     (last_only ? " row 0 last column only" : "");
  Result res = compare_forward(name, got, ref, tolerance(t));
  if (!kernels::decode_attention_kernel_applies(q, k, v, mask))  // the reference on both sides: fail
    res.diffs.push_back({"kernel not taken", INFINITY, INFINITY});
  return res;
}

// RMSNorm without autograd (inference): the weight in x's dtype goes to the kernel as is (no float32 copy).
inline Result check_rms_norm_inference(at::Device dev, at::ScalarType t, std::vector<std::int64_t> shape) {
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn(shape, opts(dev, t)) * 3;
  const at::Tensor w = (at::rand({shape.back()}, opts(dev, at::kFloat)) + 0.5).to(t);
  const at::Tensor got = kernels::rms_norm(x, w, 1e-5), want = kernels::rms_norm_reference(x, w, 1e-5);
  std::string name = "rms_norm inference " + ts(t) + " [";
  for (auto d : shape) name += std::to_string(d) + ",";
  name.back() = ']';
  Result r{name, tolerance(t), {diff("y", got, want)}, true};
  r.finite = at::isfinite(got).all().item<bool>() && got.scalar_type() == want.scalar_type();
  return r;
}

// The decode step's RoPE + KV-cache write (kernels::rope_cache_write) vs its reference on the same device: q/k/v as
// the fused q/k/v projection makes them for one new token (column slices of [B, 1, (Hq + 2 Hk) * D], viewed
// [B, H, 1, D]), caches [B, Hk, C, D] with random contents, the write column on the device; the rotated q and both
// whole caches compared (the columns not written must be unchanged).
inline Result check_rope_cache_write(at::Device dev, at::ScalarType t, std::int64_t B, std::int64_t Hq,
                                     std::int64_t Hk, std::int64_t D, std::int64_t C, std::int64_t column) {
  at::NoGradGuard no_grad;
  const auto o = opts(dev, t);
  const at::Tensor qkv = at::randn({B, 1, (Hq + 2 * Hk) * D}, o);
  auto heads = [&](std::int64_t from, std::int64_t n) {
    return qkv.narrow(2, from * D, n * D).view({B, 1, n, D}).transpose(1, 2);
  };
  const at::Tensor q = heads(0, Hq), k = heads(Hq, Hk), v = heads(Hq + Hk, Hk);
  const at::Tensor pos = at::randint(0, 4096, {B, 1}, at::TensorOptions().dtype(at::kLong).device(dev));
  const auto [cos, sin] = model::rope_cos_sin(model::rope_inv_freq(model::RopeConfig{}, D).to(dev), pos, t);
  const at::Tensor col = at::full({1}, column, at::TensorOptions().dtype(at::kLong).device(dev));
  const at::Tensor kc0 = at::randn({B, Hk, C, D}, o), vc0 = at::randn({B, Hk, C, D}, o);
  at::Tensor kc = kc0.clone(), vc = vc0.clone(), kr = kc0.clone(), vr = vc0.clone();
  const at::Tensor got = kernels::rope_cache_write(q, k, v, cos, sin, kc, vc, col);
  const at::Tensor want = kernels::rope_cache_write_reference(q, k, v, cos, sin, kr, vr, col);
  Result r{"rope_cache_write " + ts(t) + " B" + std::to_string(B) + " Hq" + std::to_string(Hq) + " Hk" +
               std::to_string(Hk) + " D" + std::to_string(D) + " C" + std::to_string(C),
           tolerance(t), {}, true};
  r.diffs = {diff("q", got, want), diff("k_cache", kc, kr), diff("v_cache", vc, vr)};
  r.finite = at::isfinite(got).all().item<bool>() && got.sizes() == want.sizes();
  return r;
}

// Every comparison the CUDA kernels must pass: hidden 576 and 2048, odd row counts, head_dim 64 and 128,
// transposed q/k views, fp32/bf16/fp16 and the mixed dtypes of autocast; shapes that take the element-wise paths.
inline std::vector<Result> all_cuda_checks(at::Device dev) {
  std::vector<Result> r;
  for (auto t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    r.push_back(check_rms_norm(dev, t, t, {3, 37, 576}));
    r.push_back(check_rms_norm(dev, t, t, {2, 129, 2048}));
    r.push_back(check_rope(dev, t, t, 2, 5, 37, 64));
    r.push_back(check_rope(dev, t, t, 3, 4, 29, 128));
    r.push_back(check_swiglu(dev, t, {3, 37, 1536}));
    r.push_back(check_swiglu(dev, t, {5, 7, 99}));  // 3465 elements: no 16-byte path
  }
  r.push_back(check_rms_norm(dev, at::kFloat, at::kFloat, {7, 100}));        // D % 4 != 0: element path
  r.push_back(check_rms_norm(dev, at::kBFloat16, at::kBFloat16, {2, 3, 13, 64}, /*transposed_heads=*/true));
  r.push_back(check_rms_norm(dev, at::kBFloat16, at::kFloat, {2, 3, 13, 128}, /*transposed_heads=*/true));
  r.push_back(check_rms_norm(dev, at::kFloat, at::kBFloat16, {5, 576}));
  r.push_back(check_rms_norm(dev, at::kBFloat16, at::kFloat, {3, 37, 576}));
  r.push_back(check_rope(dev, at::kBFloat16, at::kFloat, 2, 5, 37, 64));   // autocast: bf16 q, float32 cos/sin
  r.push_back(check_rope(dev, at::kHalf, at::kFloat, 1, 3, 11, 128));
  r.push_back(check_rope(dev, at::kFloat, at::kFloat, 1, 3, 11, 18));      // half 9: element path
  for (auto t : {at::kFloat, at::kBFloat16}) {
    r.push_back(check_swiglu_packed(dev, t, {3, 37, 2 * 1536}));
    r.push_back(check_swiglu_packed(dev, t, {5, 7, 2 * 99}));  // rows of 99: element path
    r.push_back(check_rope_slice(dev, t, 2, 4, 37, 64));
  }
  r.push_back(check_fused_projection(dev, 256, {256, 64, 64}, {true, false, true}, /*train_weights=*/true));
  r.push_back(check_fused_projection(dev, 128, {320, 320}, {true, true}, /*train_weights=*/false));
  r.push_back(check_linear_cross_entropy(dev, at::kBFloat16, 300, 256, 8192));  // 16-byte path
  r.push_back(check_linear_cross_entropy(dev, at::kBFloat16, 77, 128, 5003));   // odd vocabulary: element path
  r.push_back(check_linear_cross_entropy(dev, at::kFloat, 130, 64, 4096));
  for (auto t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    r.push_back(check_decode_attention(dev, t, 1, 32, 8, 64, 2080));
    r.push_back(check_decode_attention(dev, t, 1, 9, 3, 64, 160));
    r.push_back(check_decode_attention(dev, t, 4, 14, 2, 128, 333));
    r.push_back(check_decode_attention(dev, t, 16, 32, 8, 64, 4096));
    r.push_back(check_decode_attention(dev, t, 2, 4, 4, 64, 1));
  }
  r.push_back(check_decode_attention(dev, at::kBFloat16, 3, 32, 8, 64, 2080, /*last_only=*/true));
  for (auto t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    r.push_back(check_rms_norm_inference(dev, t, {1, 1, 2048}));
    r.push_back(check_rms_norm_inference(dev, t, {3, 37, 576}));
    r.push_back(check_rms_norm_inference(dev, t, {5, 100}));  // D % 8 != 0: element path
    r.push_back(check_rope_cache_write(dev, t, 1, 32, 8, 64, 256, 37));
    r.push_back(check_rope_cache_write(dev, t, 3, 9, 3, 64, 160, 159));
    r.push_back(check_rope_cache_write(dev, t, 2, 14, 2, 128, 33, 0));
  }
  return r;
}

}  // namespace llmstudio::kernel_checks
