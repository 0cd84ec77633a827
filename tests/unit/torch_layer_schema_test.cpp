// The layer schema (model/layer_schema.h) drives gradient checkpointing: for every supported architecture, with
// gradient checkpointing on, every trainable tensor of the schema (norms, projection weights and biases, LoRA A/B,
// DoRA magnitudes, unfrozen base tensors) receives a non-zero gradient, in full fine-tuning and with LoRA. (That
// the schema's tensor names equal those of real transformers checkpoints: tests/parity/test_layer_schema.py.)
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <map>
#include <set>
#include <string>

#include "llmstudio/model/architecture.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/layer_schema.h"
#include "llmstudio/model/lora.h"
#include "../tools/tiny_model.h"

using namespace llmstudio;
using namespace llmstudio::model;

namespace {

// A small random model of `spec`, with every optional tensor of the schema present where the family allows it.
CausalLM tiny_model(const ArchitectureSpec& spec) { return test_models::tiny_causal_lm(spec); }

// One checkpointed forward/backward in training mode.
void backward(CausalLM& m) {
  m.set_training(true);
  m.set_gradient_checkpointing(true);
  at::Tensor ids = at::arange(1, 13, at::kLong).remainder(37).view({2, 6});
  m.forward(ids).pow(2).mean().backward();
}

// Every tensor of every layer's schema row, and every adapter, that requires grad has a non-zero gradient.
// Returns how many were checked.
int expect_gradients(const CausalLM& m, const std::string& what) {
  int checked = 0;
  auto check = [&](const at::Tensor& t, const std::string& name) {
    if (!t.defined() || !t.requires_grad()) return;
    ++checked;
    ASSERT_TRUE(t.grad().defined()) << what << ": " << name << " has no gradient";
    EXPECT_GT(t.grad().abs().sum().item<double>(), 0.0) << what << ": " << name << " has a zero gradient";
  };
  const LayerSchema& s = m.layer_schema();
  for (std::size_t i = 0; i < m.layers().size(); ++i) {
    for (const auto& t : s.tensors) check(layer_tensor(m.layers()[i], t), std::to_string(i) + "." + t.hf_leaf);
    for (const Linear* lin : layer_linears(s, m.layers()[i])) {
      check(lin->lora_a, std::to_string(i) + " lora_A");
      check(lin->lora_b, std::to_string(i) + " lora_B");
      check(lin->lora_magnitude, std::to_string(i) + " lora_magnitude");
    }
  }
  return checked;
}

int layer_parameter_count(const CausalLM& m) {
  int n = 0;
  for (const auto& [name, t] : m.named_parameters()) n += name.rfind("model.layers.", 0) == 0;
  return n;
}

}  // namespace

TEST(LayerSchema, FullFineTuningUnderCheckpointingGivesEverySchemaTensorAGradient) {
  for (const auto& spec : supported_architectures()) {
    CausalLM m = tiny_model(spec);
    for (auto& [name, p] : m.named_parameters()) p.set_requires_grad(true);
    backward(m);
    const int checked = expect_gradients(m, spec.hf_architecture);
    EXPECT_EQ(checked, layer_parameter_count(m)) << spec.hf_architecture;
    std::printf("%s full: %d layer tensors with gradients\n", spec.hf_architecture, checked);
  }
}

TEST(LayerSchema, LoraUnderCheckpointingGivesEveryAdapterAndUnfrozenTensorAGradient) {
  for (const auto& spec : supported_architectures())
    for (bool dora : {false, true}) {
      CausalLM m = tiny_model(spec);
      LoraConfig lc;
      lc.r = 2;
      lc.dropout = 0.1;
      lc.use_dora = dora;
      attach_lora(m, lc, 3);
      {
        at::NoGradGuard no_grad;  // a non-zero B, so that A receives a non-zero gradient
        for (auto& [name, p] : lora_parameters(m))
          if (name.find("lora_B") != std::string::npos) p.normal_(0.0, 0.2);
      }
      // Unfrozen base tensors (lora_unfreeze_layers): a norm and a projection bias or weight of layer 0.
      std::set<std::string> unfrozen = {"model.layers.0.input_layernorm.weight", "model.layers.1.mlp.up_proj.weight"};
      for (auto& [name, p] : m.named_parameters())
        if (unfrozen.count(name)) p.set_requires_grad(true);
      backward(m);
      const int checked = expect_gradients(m, std::string(spec.hf_architecture) + (dora ? " DoRA" : " LoRA"));
      const int adapters = static_cast<int>(lora_parameters(m).size());
      EXPECT_EQ(adapters, 2 * 7 * (dora ? 3 : 2)) << spec.hf_architecture;
      EXPECT_EQ(checked, adapters + static_cast<int>(unfrozen.size())) << spec.hf_architecture;
      std::printf("%s %s: %d tensors with gradients\n", spec.hf_architecture, dora ? "DoRA" : "LoRA", checked);
    }
}

// Qwen3's per-head q/k norms are schema rows: under checkpointing they are trained in full fine-tuning and
// when unfrozen next to LoRA.
TEST(LayerSchema, Qwen3QkNormsReceiveGradientsUnderCheckpointing) {
  const ArchitectureSpec& spec = architecture_spec("Qwen3ForCausalLM");
  for (bool lora : {false, true}) {
    CausalLM m = tiny_model(spec);
    if (lora) {
      LoraConfig lc;
      lc.r = 2;
      attach_lora(m, lc, 3);
    }
    for (auto& [name, p] : m.named_parameters())
      if (!lora || name.find("_norm.weight") != std::string::npos) p.set_requires_grad(true);
    backward(m);
    int norms = 0;
    for (const auto& [name, p] : m.named_parameters()) {
      if (name.find("q_norm") == std::string::npos && name.find("k_norm") == std::string::npos) continue;
      ++norms;
      ASSERT_EQ(p.sizes(), at::IntArrayRef({4})) << name << " must be [head_dim]";
      ASSERT_TRUE(p.grad().defined()) << name << (lora ? " (LoRA)" : " (full)") << " has no gradient";
      const double g = p.grad().abs().sum().item<double>();
      EXPECT_GT(g, 0.0) << name;
      std::printf("Qwen3 %s: %s |grad| sum %.4g\n", lora ? "LoRA" : "full", name.c_str(), g);
    }
    EXPECT_EQ(norms, 4);  // 2 layers x (q_norm, k_norm)
  }
}

TEST(LayerSchema, FusedSplitRuleGivesTheRowsOfEachPart) {
  // Defined for fused architectures (Phi-3's qkv_proj); checked here on a Llama-shaped config.
  ModelConfig c;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 24;
  const FusedSplit qkv{"self_attn.qkv_proj", "qkv_proj", {LayerRole::Q, LayerRole::K, LayerRole::V}};
  EXPECT_EQ(fused_split_sizes(qkv, c), (std::vector<std::int64_t>{32, 16, 16}));
  const FusedSplit gate_up{"mlp.gate_up_proj", "gate_up_proj", {LayerRole::Gate, LayerRole::Up}};
  EXPECT_EQ(fused_split_sizes(gate_up, c), (std::vector<std::int64_t>{24, 24}));
}
