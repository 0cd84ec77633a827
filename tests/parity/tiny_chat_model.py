"""A tiny random Llama with a real tokenizer for text-level tests (chat, prompt formats, stop strings): a
byte-level BPE trained here with the `tokenizers` library (no files from ../shared), a chat template, and an
lm_head that only lets lowercase letters and spaces win the argmax (printable replies, no early EOS)."""
import json
import re

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

TEMPLATE = ("{% for m in messages %}{{ '<s>' + m['role'] + '\\n' + m['content'] + '</s>\\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<s>assistant\\n' }}{% endif %}")
CORPUS = ["the quick brown fox jumps over the lazy dog", "hello there how are you today",
          "a small model answers every question with random words", "tell me a story about the sea and the moon"] * 20


def make_chat_model(d, with_template=True):
    """Writes the model + tokenizer folder `d`; returns (transformers model, transformers tokenizer)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    d.mkdir(parents=True)
    tok.save(str(d / "tokenizer.json"))
    tcfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>"}
    if with_template:
        tcfg["chat_template"] = TEMPLATE
    (d / "tokenizer_config.json").write_text(json.dumps(tcfg))
    vocab, eos = tok.get_vocab_size(), tok.token_to_id("</s>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False, bos_token_id=tok.token_to_id("<s>"), eos_token_id=eos)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(0.15 * torch.randn_like(p))
        keep = torch.tensor([re.fullmatch(r"[a-z ]+", tok.decode([i])) is not None for i in range(vocab)])
        model.lm_head.weight[~keep] = 0
        model.lm_head.weight[keep] *= 4
    model.eval()
    model.save_pretrained(d)
    return model, AutoTokenizer.from_pretrained(d)


def greedy_ids(model, ids, new):
    ids = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, do_sample=False,
                             eos_token_id=model.config.eos_token_id, pad_token_id=0)
    return out[0, ids.size(1):].tolist()


def chat_reply(model, hf_tok, messages, new):
    """transformers: apply_chat_template(add_generation_prompt) -> greedy generate -> decoded reply."""
    text = hf_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = greedy_ids(model, hf_tok.encode(text, add_special_tokens=False), new)
    return hf_tok.decode(ids, skip_special_tokens=True)
