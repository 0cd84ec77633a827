// Chunked linear + cross-entropy (see linear_cross_entropy.h).
#include "llmstudio/kernels/linear_cross_entropy.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

#include "llmstudio/core/error.h"
#include "llmstudio/kernels/backend.h"
#if LLMS_CUDA_KERNELS
#include "llmstudio/kernels/cuda/glue.h"
#endif

namespace llmstudio::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr std::int64_t kIgnoreIndex = -100;

// Inside the Function the dtypes are explicit: no autocast re-casting (backward may run with the forward's
// thread-local autocast state).
struct NoAutocast {
  c10::impl::ExcludeDispatchKeyGuard guard{c10::autocast_dispatch_keyset};
};

// log_softmax of one chunk's logits [n, V] in float32. On CUDA from fp16 logits directly (the softmax kernel's
// half_to_float mode, which libtorch has for Half only); otherwise after an upcast of the chunk.
at::Tensor log_softmax_f32(const at::Tensor& logits) {
  if (logits.is_cuda() && logits.scalar_type() == at::kHalf) return at::_log_softmax(logits, 1, true);
  return at::_log_softmax(logits.to(at::kFloat), 1, false);
}

// Labels with ignored rows pointing at class 0 (their weight is 0), as a gather/scatter index [n, 1].
at::Tensor target_index(const at::Tensor& labels) {
  return labels.masked_fill(labels.eq(kIgnoreIndex), 0).unsqueeze(1);
}

// dlogits = (probs - onehot(target)) * scale[:, None] in the compute dtype, from float32 probabilities [n, V]
// (modified in place); rows with scale 0 (ignored) become 0. One fused multiply-and-cast for bf16/fp16.
at::Tensor logits_grad(at::Tensor& probs, const at::Tensor& index, const at::Tensor& scale, at::ScalarType dtype) {
  probs.scatter_add_(1, index, at::full({index.size(0), 1}, -1.0, probs.options()));
  if (dtype == at::kFloat) return probs.mul_(scale.unsqueeze(1));
  at::Tensor out = at::empty(probs.sizes(), probs.options().dtype(dtype));
  return at::mul_out(out, probs, scale.unsqueeze(1));
}

// One chunk's loss (sum over its rows of w * ce) and dlogits = (softmax - onehot) * w in the logits' dtype, by the
// fused CUDA row kernel (kernels/cuda/cross_entropy.cu): the logits are read twice and never upcast. False when it
// does not apply (no CUDA kernels, another device or dtype, the reference forced).
bool fused_chunk_grads(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& tw, at::Tensor& loss,
                       at::Tensor& dlogits) {
#if LLMS_CUDA_KERNELS
  if (!cuda_kernel_applies(logits) || reference_only() || !logits.is_contiguous()) return false;
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor lab = labels.contiguous(), scale = tw.to(at::kFloat).contiguous();
  at::Tensor row_loss = at::empty({logits.size(0)}, scale.options());
  dlogits = at::empty_like(logits);
  cuda::cross_entropy_rows({logits.data_ptr(), lab.data_ptr<std::int64_t>(), scale.data_ptr<float>(), dlogits.data_ptr(),
                            row_loss.data_ptr<float>(), logits.size(0), logits.size(1), cuda::to_dtype(logits.scalar_type())},
                           cuda::stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  loss.add_(at::dot(row_loss, scale));
  return true;
#else
  (void)logits, (void)labels, (void)tw, (void)loss, (void)dlogits;
  return false;
#endif
}

// grad_hidden[chunk] = dlogits @ W; grad_weight += dlogits^T @ h (in the compute dtype, one rounding per chunk).
void accumulate_grads(const at::Tensor& dlogits, const at::Tensor& h, const at::Tensor& w, at::Tensor grad_h_rows,
                      at::Tensor* grad_w) {
  if (grad_h_rows.defined()) at::mm_out(grad_h_rows, dlogits, w);
  if (grad_w) grad_w->addmm_(dlogits.t(), h);
}

class LinearCrossEntropyFunction : public torch::autograd::Function<LinearCrossEntropyFunction> {
 public:
  // hidden [N, H] and weight [V, H] in the compute dtype; labels [N] int64; token_weights [N] float32.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& labels, const at::Tensor& token_weights, std::int64_t rows, bool eager,
                            bool need_h, bool need_w) {
    NoAutocast no_autocast;
    const std::int64_t n_rows = hidden.size(0);
    const bool grads_now = eager && (need_h || need_w);
    at::Tensor loss = at::zeros({}, token_weights.options());
    at::Tensor lse_all = at::empty({n_rows}, token_weights.options());
    at::Tensor grad_h = grads_now && need_h ? at::empty_like(hidden) : at::Tensor();
    at::Tensor grad_w = grads_now && need_w ? at::zeros_like(weight) : at::Tensor();
    for (std::int64_t r0 = 0; r0 < n_rows; r0 += rows) {
      const std::int64_t n = std::min(rows, n_rows - r0);
      const at::Tensor h = hidden.narrow(0, r0, n), lab = labels.narrow(0, r0, n), tw = token_weights.narrow(0, r0, n);
      const at::Tensor logits = at::mm(h, weight.t());
      at::Tensor dlogits;
      if (grads_now && fused_chunk_grads(logits, lab, tw, loss, dlogits)) {
        accumulate_grads(dlogits, h, weight, need_h ? grad_h.narrow(0, r0, n) : at::Tensor(), need_w ? &grad_w : nullptr);
        continue;
      }
      const at::Tensor index = target_index(lab);
      at::Tensor logp = log_softmax_f32(logits);
      const at::Tensor target_logp = logp.gather(1, index).squeeze(1);
      loss.add_((target_logp.neg().masked_fill_(lab.eq(kIgnoreIndex), 0.0) * tw).sum());
      if (!grads_now) {  // logsumexp = logit - log_softmax, at the target
        lse_all.narrow(0, r0, n).copy_(logits.gather(1, index).squeeze(1).to(at::kFloat) - target_logp);
        continue;
      }
      dlogits = logits_grad(logp.exp_(), index, tw, hidden.scalar_type());
      accumulate_grads(dlogits, h, weight, need_h ? grad_h.narrow(0, r0, n) : at::Tensor(), need_w ? &grad_w : nullptr);
    }
    ctx->saved_data["rows"] = rows;
    ctx->saved_data["eager"] = grads_now;
    ctx->saved_data["need_h"] = need_h;
    ctx->saved_data["need_w"] = need_w;
    if (grads_now) {
      ctx->saved_data["grad_h"] = grad_h;
      ctx->saved_data["grad_w"] = grad_w;
    } else {
      ctx->save_for_backward({hidden, weight, labels, token_weights});
      ctx->saved_data["lse"] = lse_all;
    }
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    NoAutocast no_autocast;
    const at::Tensor g = grad_outputs[0].to(at::kFloat);  // 0-dim, on the device
    at::Tensor grad_h, grad_w;
    if (ctx->saved_data["eager"].toBool()) {
      // Taken out of the context (the node lives as long as the loss tensor, i.e. through the whole backward) and
      // scaled in place (a 0-dim float32 factor keeps the compute dtype): no second [V, H] buffer.
      LLMS_CHECK(ctx->saved_data.count("grad_h") != 0,
                 "linear_cross_entropy: backward ran a second time, but eager gradients are released by the first\n"
                 "  hint: use LceGrad::Recompute to backward more than once");
      grad_h = ctx->saved_data["grad_h"].toTensor(), grad_w = ctx->saved_data["grad_w"].toTensor();
      ctx->saved_data.erase("grad_h"), ctx->saved_data.erase("grad_w");
      if (grad_h.defined()) grad_h.mul_(g);
      if (grad_w.defined()) grad_w.mul_(g);
    } else {
      recompute_grads(ctx, g, grad_h, grad_w);
    }
    return {grad_h, grad_w, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }

 private:
  static void recompute_grads(AutogradContext* ctx, const at::Tensor& g, at::Tensor& grad_h, at::Tensor& grad_w) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &labels = saved[2], &token_weights = saved[3];
    const at::Tensor lse_all = ctx->saved_data["lse"].toTensor();
    const std::int64_t rows = ctx->saved_data["rows"].toInt(), n_rows = hidden.size(0);
    const bool need_h = ctx->saved_data["need_h"].toBool() && ctx->needs_input_grad(0);
    const bool need_w = ctx->saved_data["need_w"].toBool() && ctx->needs_input_grad(1);
    if (need_h) grad_h = at::empty_like(hidden);
    if (need_w) grad_w = at::zeros_like(weight);
    if (!need_h && !need_w) return;
    const at::Tensor scale_all = token_weights * g;
    for (std::int64_t r0 = 0; r0 < n_rows; r0 += rows) {
      const std::int64_t n = std::min(rows, n_rows - r0);
      const at::Tensor h = hidden.narrow(0, r0, n);
      at::Tensor probs = at::sub(at::mm(h, weight.t()), lse_all.narrow(0, r0, n).unsqueeze(1)).exp_();  // float32
      const at::Tensor dlogits = logits_grad(probs, target_index(labels.narrow(0, r0, n)), scale_all.narrow(0, r0, n),
                                             hidden.scalar_type());
      accumulate_grads(dlogits, h, weight, need_h ? grad_h.narrow(0, r0, n) : at::Tensor(), need_w ? &grad_w : nullptr);
    }
  }
};

void check_inputs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                  const at::Tensor& token_weights) {
  LLMS_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
             "linear_cross_entropy: expected hidden [N, H] and weight [V, H], found hidden ", hidden.sizes(),
             " and weight ", weight.sizes(), "\n  hint: flatten the batch and time dimensions of hidden first");
  LLMS_CHECK(labels.dim() == 1 && labels.size(0) == hidden.size(0) && labels.scalar_type() == at::kLong,
             "linear_cross_entropy: expected labels [", hidden.size(0), "] int64, found ", labels.sizes(), " ",
             labels.scalar_type());
  LLMS_CHECK(token_weights.dim() == 1 && token_weights.size(0) == hidden.size(0),
             "linear_cross_entropy: expected token_weights [", hidden.size(0), "], found ", token_weights.sizes());
  LLMS_CHECK(weight.device() == hidden.device() && labels.device() == hidden.device() &&
                 token_weights.device() == hidden.device(),
             "linear_cross_entropy: hidden, weight, labels and token_weights must be on one device, found ",
             hidden.device(), ", ", weight.device(), ", ", labels.device(), ", ", token_weights.device());
}

bool eager_grads(LceGrad mode, at::ScalarType compute) {
  switch (mode) {
    case LceGrad::Eager: return true;
    case LceGrad::Recompute: return false;
    case LceGrad::Auto: break;
  }
  return compute != at::kHalf;
}

}  // namespace

bool linear_cross_entropy_chunked_on(const at::Device& device) { return device.is_cuda(); }

std::int64_t linear_cross_entropy_chunk_rows(std::int64_t n, std::int64_t vocab,
                                             const LinearCrossEntropyOptions& options) {
  std::int64_t rows = options.chunk_rows;
  if (rows <= 0) {
    rows = options.chunk_bytes / (4 * std::max<std::int64_t>(vocab, 1));
    if (rows >= 128) rows -= rows % 64;  // GEMM-friendly multiples
  }
  return std::clamp<std::int64_t>(rows, 1, std::max<std::int64_t>(n, 1));
}

at::Tensor linear_cross_entropy_reference(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                          const at::Tensor& token_weights) {
  check_inputs(hidden, weight, labels, token_weights);
  const at::Tensor logits = at::linear(hidden, weight).to(at::kFloat);
  return (at::cross_entropy_loss(logits, labels, {}, at::Reduction::None, kIgnoreIndex) * token_weights).sum();
}

at::Tensor linear_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                const at::Tensor& token_weights, const LinearCrossEntropyOptions& options) {
  const bool chunked = options.impl == LceImpl::Chunked ||
                       (options.impl == LceImpl::Auto && linear_cross_entropy_chunked_on(hidden.device()));
  if (!chunked) return linear_cross_entropy_reference(hidden, weight, labels, token_weights);
  check_inputs(hidden, weight, labels, token_weights);
  at::Tensor h = hidden, w = weight;
  const at::DeviceType type = hidden.device().type();
  if (at::autocast::is_autocast_enabled(type)) {  // as at::linear under autocast (cached cast of leaf weights)
    const at::ScalarType to = at::autocast::get_autocast_dtype(type);
    h = at::autocast::cached_cast(to, hidden, type);
    w = at::autocast::cached_cast(to, weight, type);
  }
  LLMS_CHECK(h.scalar_type() == w.scalar_type(), "linear_cross_entropy: hidden is ", h.scalar_type(), " but weight is ",
             w.scalar_type(), "\n  hint: cast both to one dtype, or run under autocast");
  const bool grad = at::GradMode::is_enabled();
  const bool need_h = grad && h.requires_grad(), need_w = grad && w.requires_grad();
  const std::int64_t rows = linear_cross_entropy_chunk_rows(h.size(0), w.size(0), options);
  // Ignored rows weigh 0 whatever token_weights says (as cross_entropy's ignore_index).
  const at::Tensor tw = token_weights.to(at::kFloat).masked_fill(labels.eq(kIgnoreIndex), 0.0).contiguous();
  return LinearCrossEntropyFunction::apply(h.contiguous(), w.contiguous(), labels.contiguous(), tw, rows,
                                           eager_grads(options.grad, h.scalar_type()), need_h, need_w);
}

}  // namespace llmstudio::kernels
