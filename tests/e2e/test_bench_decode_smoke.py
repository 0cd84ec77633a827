"""bench/bench_gpu.py's decode rows (bench/bench_decode.py) on the CPU: the smoke mode end to end against the built
llmstudio (LLMS_BIN), its JSON fields and table; the compiled reference's static-cache loop against transformers
generate() (same greedy tokens), and the roofline inputs (weight bytes, KV bytes) against the model's own counts.
The compiled path's CUDA graphs (mode="reduce-overhead") and the bandwidth probe only run on CUDA; here the loop runs
eagerly and under torch.compile(backend="eager", fullgraph=True), which checks that the step traces as one graph."""
import dataclasses
import json
import pathlib
import subprocess
import sys

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from conftest import shared_path

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import bench_decode  # noqa: E402

ROWS = ["decode-1b-b1-p32", "decode-1b-b16-p32", "decode-1b-b1-p2000"]


def tiny_llama(vocab=1000, layers=2):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, max_position_embeddings=512, bos_token_id=0, eos_token_id=0, hidden_size=64,
                      intermediate_size=128, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def test_decode_rows_cpu_smoke(llms_bin, tmp_path):
    tokenizer = shared_path("tokenizers", "gpt2")
    out = tmp_path / "tiny.json"
    cmd = [sys.executable, str(REPO / "bench" / "bench_gpu.py"), "--llms", str(llms_bin), "--tokenizer",
           str(tokenizer), "--device", "cpu", "--tiny", "--only", "decode", "--rows", ",".join(ROWS), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["rows"] == {}, "--only decode ran train rows"
    assert res["hbm"] == {"skipped": "no HBM roofline on the CPU"}
    assert list(res["decode"]) == ROWS
    vocab = res["vocab_size"]
    for name in ROWS:
        r = res["decode"][name]
        row = bench_decode.ROWS[name]
        assert "error" not in r, r
        c = r["config"]
        assert (c["shape"], c["batch"], c["prompt"], c["new"], c["dtype"]) == \
            ("tiny", max(1, row.batch // 8), min(row.prompt, 48), 8, "float32"), c
        # weights: the tiny shape with the tokenizer's vocabulary, fp32, tied embeddings stored once
        h, i, layers = 64, 128, 2
        per_layer = 2 * h * h + 2 * h * (h // 2) + 3 * h * i + 2 * h  # q,o + k,v (2 of 4 heads) + MLP + 2 norms
        assert r["weight_bytes"] == 4 * (vocab * h + layers * per_layer + h), r["weight_bytes"]
        for side in ("ours", "transformers"):
            s = r[side]
            assert "error" not in s, (name, side, s)
            assert s["tokens"] == c["batch"] * c["new"], (name, side, s)
            assert s["tokens_per_s"] == pytest.approx(s["tokens"] / s["seconds"], rel=1e-9)
            assert 0 < s["ttft_s"] < 60 and 0 < s["seconds"] < 60, s
            assert "roofline_pct" not in s  # no bandwidth on the CPU
        assert r["transformers_compiled"].get("skipped"), r["transformers_compiled"]
        assert r["ratio"] == pytest.approx(r["ours"]["tokens_per_s"] / r["transformers"]["tokens_per_s"], rel=1e-9)
        assert r["ttft_ratio"] == pytest.approx(r["ours"]["ttft_s"] / r["transformers"]["ttft_s"], rel=1e-9)
        assert [t["label"] for t in r["targets"]] == [t[3] for t in row.targets]
        for t in r["targets"]:  # every target is judged; those needing the GPU-only columns cannot pass here
            needs_gpu = t["metric"] in ("ours_roofline_pct", "ratio_vs_compiled")
            assert (t["found"] is None) == needs_gpu, t
            if needs_gpu:
                assert t["pass"] is False
        assert r["meets_targets"] == (all(t["pass"] for t in r["targets"]) if r["targets"] else None)
    # the TTFT target row compares the two measured TTFTs
    ttft = res["decode"]["decode-1b-b1-p2000"]["targets"][0]
    assert ttft["pass"] == (ttft["found"] < 1.0)
    table = proc.stdout[proc.stdout.index("\ndecode: greedy, float32"):]
    for name in ROWS:
        line = next(x for x in table.splitlines() if x.startswith(name))
        assert ("PASS" in line) != ("FAIL" in line), line
    assert "decode-1b-b1-p32" in table and "roofline >= 50%: -" in table


def test_static_decoder_matches_generate():
    model = tiny_llama()
    ids = bench_decode.prompts_for(3, 20, 1000)
    ref, gen_tokens = bench_decode.ref_decode(model, ids, 12, "cpu")
    assert gen_tokens.shape == (3, 12) and ref["tokens"] == 36
    eager = bench_decode.StaticDecoder(model, 32).generate(ids, 12)
    print("eager static loop: matching prefix", bench_decode.matching_prefix(eager, gen_tokens), "of 12")
    assert torch.equal(eager, gen_tokens)
    # the whole compiled reference, with dynamo tracing the step as one graph (fullgraph) but no inductor/graphs
    res, tokens = bench_decode.compiled_decode(model, ids, 12, "cpu",
                                               dict(backend="eager", fullgraph=True, dynamic=False))
    torch._dynamo.reset()
    assert "error" not in res and "errors" not in res, res
    assert "StaticCache" in res["method"] and res["tokens"] == 36 and res["compile_s"] > 0
    print("compiled loop (backend eager): matching prefix", bench_decode.matching_prefix(tokens, gen_tokens), "of 12")
    assert torch.equal(tokens, gen_tokens)
    assert bench_decode.matching_prefix(tokens, gen_tokens) == 12
    flipped = tokens.clone()
    flipped[1, 5] += 1
    assert bench_decode.matching_prefix(flipped, gen_tokens) == 5


def test_weight_and_kv_bytes(tmp_path):
    model = tiny_llama(vocab=333, layers=3)
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    params = sum(p.numel() for p in model.parameters())  # the tied lm_head counted once
    assert bench_decode.weight_bytes(tmp_path, 2) == 2 * params, (bench_decode.weight_bytes(tmp_path, 2), params)
    cfg = model.config
    # one step at 50 cached positions, batch 4: K and V of every layer, 2 KV heads of dim 16, bf16
    assert bench_decode.kv_bytes_per_step(cfg, 4, 50, 2) == 2 * 3 * 2 * 16 * 2 * 4 * 50
    layer = model.model.layers[0].self_attn
    assert layer.k_proj.out_features == 2 * 16  # the head layout the formula assumes


def test_derived_fields_and_targets():
    row = bench_decode.ROWS["decode-1b-b1-p32"]
    side = {"tokens_per_s": 1000.0, "tokens": 128, "seconds": 0.128, "ttft_s": 0.002}
    bench_decode.add_derived(side, row, 128, wbytes=2.0e9, kv_bytes=1.0e8, gbps=4000.0)
    assert side["roofline_pct"] == pytest.approx(100 * 2.0e9 * 1000 / 4.0e12)  # 50%
    assert side["roofline_pct_with_kv"] == pytest.approx(100 * 2.1e9 * 1000 / 4.0e12)
    assert side["decode_tokens_per_s"] == pytest.approx(127 / 0.126)
    b16 = dataclasses.replace(row, batch=16)
    side16 = {"tokens_per_s": 16000.0, "tokens": 2048, "seconds": 0.128, "ttft_s": 0.002}
    bench_decode.add_derived(side16, b16, 128, wbytes=2.0e9, kv_bytes=0, gbps=4000.0)
    assert side16["roofline_pct"] == pytest.approx(50.0)  # weights are read once per step, not per token
    res = {"ours": side, "ratio_vs_compiled": 1.79}
    assert bench_decode.judge(res, row.targets) is False
    assert [c["pass"] for c in res["targets"]] == [True, False]
    res["ratio_vs_compiled"] = 1.8
    assert bench_decode.judge(res, row.targets) is True
    assert bench_decode.judge({"ours": side}, ()) is None



def test_decode_bench_flow_with_compiled_reference(llms_bin, tmp_path, monkeypatch):
    """DecodeBench.run as on the GPU, the compiled column included (dynamo with backend="eager" on the CPU): the
    compiled reference is measured after the rows with targets and before the rows without, and fills
    ratio_vs_compiled and that target."""
    import argparse
    import bench_gpu
    monkeypatch.setattr(bench_decode, "COMPILED_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(bench_decode, "COMPILE_KW", dict(backend="eager", fullgraph=True, dynamic=False))
    a = argparse.Namespace(llms=llms_bin, tokenizer=shared_path("tokenizers", "gpt2"), device="cpu", tiny=True,
                           new=6, compile_ref=True)
    rows = bench_decode.select_rows(["decode-1b-b1-p32", "decode-1b-b64-p32"], tiny=True)
    saved, results = [], {}
    from tokenizers import Tokenizer
    vocab = Tokenizer.from_file(str(a.tokenizer / "tokenizer.json")).get_vocab_size()
    bench = bench_decode.DecodeBench(a, vocab, tmp_path, bench_gpu.make_model)
    bench.run(rows, results, lambda: saved.append(json.loads(json.dumps(results["decode"]))))
    torch._dynamo.reset()
    # saves: row 1 (compiled pending), row 1 with its compiled column (before the row without targets), row 2
    assert [list(s) for s in saved] == [["decode-1b-b1-p32"], ["decode-1b-b1-p32"],
                                        ["decode-1b-b1-p32", "decode-1b-b64-p32"]]
    assert saved[0]["decode-1b-b1-p32"]["transformers_compiled"] == {"pending": "measured after the other rows"}
    r = results["decode"]["decode-1b-b1-p32"]
    c = r["transformers_compiled"]
    assert "error" not in c and c["tokens"] == 6 and "StaticCache" in c["method"], c
    assert c["matching_prefix_vs_generate"] == 6  # fp32, same model: the static loop's tokens are generate()'s
    assert r["ratio_vs_compiled"] == pytest.approx(r["ours"]["tokens_per_s"] / c["tokens_per_s"], rel=1e-9)
    comp_target = next(t for t in r["targets"] if t["metric"] == "ratio_vs_compiled")
    assert comp_target["found"] == r["ratio_vs_compiled"] and comp_target["pass"] == (r["ratio_vs_compiled"] >= 1.8)
    assert results["decode"]["decode-1b-b64-p32"]["transformers_compiled"]["skipped"]
    assert results["decode"]["decode-1b-b64-p32"]["meets_targets"] is None


def test_compiled_reference_falls_back_to_generate_static(monkeypatch):
    """When the hand-written static loop fails, transformers' own static-cache generate() is measured and the error
    recorded (on the CPU generate() skips its compilation: this checks the call, the shared cache and the tokens)."""
    model = tiny_llama()
    ids = bench_decode.prompts_for(2, 16, 1000)
    _, gen_tokens = bench_decode.ref_decode(model, ids, 10, "cpu")

    def broken(*args, **kw):
        raise RuntimeError("step failed\nsecond line")
    monkeypatch.setattr(bench_decode, "StaticDecoder", broken)
    res, tokens = bench_decode.compiled_decode(model, ids, 10, "cpu")
    assert res["errors"] == {"static_step": "RuntimeError: step failed | second line"}, res
    assert res["method"].startswith("generate(cache_implementation='static'") and res["tokens"] == 20
    assert torch.equal(tokens, gen_tokens)
