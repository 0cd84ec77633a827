// Attention kernels of a decoder block (see attention.h).
#include "llmstudio/model/attention.h"

#include <ATen/autocast_mode.h>

#include <cmath>

#include "llmstudio/core/error.h"
#include "llmstudio/kernels/decode_attention.h"

namespace llmstudio::model {

SequenceSegments SequenceSegments::left_padded(const std::vector<std::int64_t>& real_tokens, std::int64_t T) {
  SequenceSegments s;
  s.offsets.push_back(0);
  std::int64_t start = 0;
  for (std::int64_t n : real_tokens) {
    LLMS_CHECK(n >= 0 && n <= T, "left_padded segments: a row has ", n, " real tokens, expected 0..", T);
    if (n < T) s.offsets.push_back(static_cast<std::int32_t>(start + T - n));  // the padding segment
    if (n > 0) s.offsets.push_back(static_cast<std::int32_t>(start + T));
    start += T;
  }
  s.max_length = T;
  return s;
}

bool SequenceSegments::one_per_row(std::int64_t T) const {
  if (empty()) return false;
  for (std::size_t i = 0; i < offsets.size(); ++i)
    if (offsets[i] != static_cast<std::int64_t>(i) * T) return false;
  return true;
}

bool varlen_flash_supported(const at::Device& device, at::ScalarType dtype, std::int64_t head_dim) {
  return device.is_cuda() && (dtype == at::kBFloat16 || dtype == at::kHalf) && head_dim % 8 == 0 && head_dim <= 256 &&
         at::globalContext().userEnabledFlashSDP();
}

namespace {

at::Tensor varlen_flash(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionInputs& in,
                        std::optional<std::int64_t> window, double dropout) {
  const std::int64_t B = q.size(0), Hq = q.size(1), T = q.size(2), D = q.size(3);
  LLMS_CHECK(k.size(2) == T, "varlen attention: keys must be the queries' tokens (no KV cache), found ", k.size(2),
             " keys for ", T, " queries");
  // [B, H, T, D] -> [B*T, H, D]
  // Under autocast the flash kernel computes in the autocast dtype, as SDPA would (q/k may be float32 there:
  // RoPE with float32 cos/sin promotes them). A [B, H, T, D] view of [B, T, H, D] memory flattens for free.
  const at::DeviceType type = q.device().type();
  const at::ScalarType dtype = at::autocast::is_autocast_enabled(type) ? at::autocast::get_autocast_dtype(type) : q.scalar_type();
  LLMS_CHECK(varlen_flash_supported(q.device(), dtype, D), "varlen attention: flash attention cannot run ",
             c10::toString(dtype), " with head_dim ", D, " on ", q.device().str());
  auto flat = [&](const at::Tensor& x) { return x.to(dtype).transpose(1, 2).reshape({B * T, x.size(1), D}); };
  std::optional<std::int64_t> left, right;
  if (window) {
    left = *window - 1;  // keys k >= q - (window - 1)
    right = 0;
  }
  auto out = at::_flash_attention_forward(flat(q), flat(k), flat(v), in.cu_seqlens, in.cu_seqlens, in.max_seqlen,
                                          in.max_seqlen, dropout, /*is_causal=*/true, /*return_debug_mask=*/false,
                                          std::nullopt, left, right);
  return std::get<0>(out).view({B, T, Hq * D});
}

}  // namespace

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionInputs& in,
                     bool sliding, std::optional<std::int64_t> sliding_window, double dropout) {
  const std::int64_t B = q.size(0), Hq = q.size(1), T = q.size(2), D = q.size(3);
  if (in.cu_seqlens.defined())  // the caller checked varlen_flash_supported for the compute dtype: no mask was built
    return varlen_flash(q, k, v, in, sliding ? sliding_window : std::nullopt, dropout);
  if (T == 1 && in.key_mask.defined() && dropout == 0) {
    const at::Tensor& keys = sliding ? in.window_key_mask : in.key_mask;
    if (kernels::decode_attention_kernel_applies(q, k, v, keys))
      return kernels::decode_attention(q, k, v, keys, 1.0 / std::sqrt(static_cast<double>(D)));
  }
  const at::Tensor& mask = sliding ? in.window_mask : in.full_mask;
  const bool gqa = k.size(1) != Hq;
  at::Tensor out = at::scaled_dot_product_attention(q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt,
                                                    dropout, /*is_causal=*/!mask.defined() && T > 1, std::nullopt, gqa);
  return out.transpose(1, 2).reshape({B, T, Hq * D});
}

}  // namespace llmstudio::model
