"""Writes a tiny random Llama model folder with transformers (config.json + model.safetensors).

Used by `make demo` until a real model ships with setup: the weights are RANDOM, so its predictions mean
nothing; it only shows that loading and the forward pass work on this machine.
"""
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

out = sys.argv[1]
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
LlamaForCausalLM(cfg).save_pretrained(out)
print(f"wrote a tiny random Llama ({sum(p.numel() for p in LlamaForCausalLM(cfg).parameters()):,} parameters) to {out}")
