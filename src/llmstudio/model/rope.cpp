// Rotary embeddings (see rope.h).
#include "llmstudio/model/rope.h"

#include <cmath>

#include "llmstudio/core/error.h"
#include "llmstudio/kernels/rope.h"

namespace llmstudio::model {

at::Tensor rope_inv_freq(const RopeConfig& rope, std::int64_t head_dim) {
  auto opts = at::TensorOptions().dtype(at::kFloat);
  // Same expression as transformers: 1 / base^(arange(0, dim, 2) / dim), the exponent computed in float32.
  at::Tensor exponent = at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
                        static_cast<float>(head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(static_cast<float>(rope.theta), exponent);
  if (rope.type == "default") return inv_freq;
  if (rope.type == "linear") return inv_freq / static_cast<float>(rope.factor);
  if (rope.type == "llama3") {
    const double factor = rope.factor, low = rope.low_freq_factor, high = rope.high_freq_factor;
    const double old_ctx = static_cast<double>(rope.original_max_position_embeddings);
    const double low_freq_wavelen = old_ctx / low, high_freq_wavelen = old_ctx / high;
    at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
    at::Tensor smooth = (old_ctx / wavelen - low) / (high - low);
    at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    at::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    return at::where(is_medium, smoothed, scaled).to(opts.dtype());
  }
  fail("rope type '", rope.type, "' is not supported; supported: default, linear, llama3");
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids,
                                               at::ScalarType dtype) {
  // freqs[b, t, i] = pos[b, t] * inv_freq[i], in float32 like transformers (autocast disabled there).
  at::Tensor freqs = position_ids.to(at::kFloat).unsqueeze(-1) * inv_freq.view({1, 1, -1});
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);  // [B, 1, T, D]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return kernels::apply_rope(x, cos, sin);
}

}  // namespace llmstudio::model
