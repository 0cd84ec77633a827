// A small random model of one supported architecture (2 layers, hidden 16, 4/2 heads of 4, every optional tensor
// the family has: biases, q/k norms, a 3-token sliding window where all layers slide), for tests that need a real
// CausalLM without a checkpoint: the layer-schema tests and the decode checks (unit test and llms_decode_tool).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>

#include "llmstudio/model/architecture.h"
#include "llmstudio/model/causal_lm.h"

namespace llmstudio::test_models {

// Weights N(0, scale^2), norm weights around 1; drawn from a CPU generator seeded with `seed`.
inline model::CausalLM tiny_causal_lm(const model::ArchitectureSpec& spec, std::int64_t vocab = 37,
                                      const std::string& device = "cpu", std::uint64_t seed = 7, double scale = 0.3) {
  model::ModelConfig c;
  c.architecture = spec.hf_architecture;
  c.model_type = spec.model_type;
  c.vocab_size = vocab;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.attention_bias = spec.qkv_bias || spec.attention_bias_key;
  c.o_proj_bias = spec.attention_bias_key;
  c.mlp_bias = spec.mlp_bias_key;
  if (spec.sliding_window_all_layers) c.sliding_window = 3;
  c.layer_uses_sliding_window.assign(2, spec.sliding_window_all_layers);
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU).clone();
  gen.set_current_seed(seed);
  std::map<std::string, at::Tensor> t;
  for (const auto& [name, shape] : model::expected_tensor_shapes(c))
    t[name] = (name.find("norm") != std::string::npos ? 1.0 : 0.0) + scale * at::randn(shape, gen, at::kFloat);
  model::LoadOptions opts;
  opts.device = device;
  return model::CausalLM::from_tensors(c, t, opts);
}

}  // namespace llmstudio::test_models
