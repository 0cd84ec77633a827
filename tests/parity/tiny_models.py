"""Tiny random Llama / Mistral / Qwen2 / Qwen3 models made with transformers, saved with save_pretrained.

Weights are re-drawn with a larger scale than transformers' init (and non-trivial norm weights and biases)
so that a missing bias, a wrong norm or a wrong rotary frequency changes the logits visibly.
"""
import torch
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

COMMON = dict(vocab_size=257, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
              num_attention_heads=4, max_position_embeddings=256)

VARIANTS = {
    # name: (config class, model class, extra config)
    "llama_gqa_llama3rope_tied": (LlamaConfig, LlamaForCausalLM, dict(
        num_key_value_heads=2, tie_word_embeddings=True, rms_norm_eps=1e-5,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 16}, rope_theta=500000.0)),
    "llama_mha_linear_rope_bias": (LlamaConfig, LlamaForCausalLM, dict(
        num_key_value_heads=4, tie_word_embeddings=False, attention_bias=True, mlp_bias=True,
        rope_scaling={"rope_type": "linear", "factor": 2.0}, head_dim=24)),
    "mistral_gqa_sliding": (MistralConfig, MistralForCausalLM, dict(
        num_key_value_heads=1, sliding_window=5, tie_word_embeddings=False, rope_theta=1e6)),
    "qwen2_gqa_bias_tied": (Qwen2Config, Qwen2ForCausalLM, dict(
        num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-6)),
    # per-head q/k RMSNorm, explicit head_dim (24, not hidden / heads = 16), no bias, layers 1-2 slide (window 5)
    "qwen3_gqa_qknorm_sliding": (Qwen3Config, Qwen3ForCausalLM, dict(
        num_key_value_heads=2, head_dim=24, tie_word_embeddings=False, rope_theta=1e6, rms_norm_eps=1e-6,
        use_sliding_window=True, sliding_window=5, max_window_layers=1)),
}


def make_model(name: str, out_dir, seed: int = 0, dtype=torch.float32):
    cfg_cls, model_cls, extra = VARIANTS[name]
    torch.manual_seed(seed)
    cfg = cfg_cls(**COMMON, **extra)
    model = model_cls(cfg).to(dtype)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif pname.endswith(".bias"):
                p.copy_(0.2 * torch.randn_like(p))
            else:
                p.copy_(0.12 * torch.randn_like(p))
    model.eval()
    model.save_pretrained(out_dir)
    return model


def position_ids_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """As transformers' generate(): first real token at position 0, padding positions set to 1."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


def lora_model(base, targets, r=4, alpha=8.0, b_scale=0.05, seed=5):
    """`base` with a PEFT LoRA adapter (dropout 0) whose B matrices are random (seeded) instead of PEFT's zeros: a
    zero B is a no-op adapter, and A would get no gradient."""
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets,
                                            task_type="CAUSAL_LM"))
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(b_scale * torch.randn_like(p))
    return model
