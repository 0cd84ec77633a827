"""A tiny random Llama with a real byte-level BPE tokenizer (trained here with the `tokenizers` library on the
example dataset), so end-to-end runs (train, generate, chat) work without any download or ../shared."""
import csv
import json
import pathlib

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM
import torch

REPO = pathlib.Path(__file__).resolve().parents[2]


def make_tokenized_model(out_dir, vocab=400, seed=0):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(open(REPO / "examples" / "data" / "train.csv", encoding="utf-8")))
    texts = [r["instruction"] + " " + r["output"] for r in rows]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|prompt|>", "<|answer|>", "<|system|>"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": "<|endoftext|>", "bos_token": None, "pad_token": "<|endoftext|>", "add_bos_token": False}))
    torch.manual_seed(seed)
    eos = tok.token_to_id("<|endoftext|>")
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                      bos_token_id=None, eos_token_id=eos, pad_token_id=eos)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out
