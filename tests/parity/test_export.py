"""`llmstudio export` against transformers / PEFT (fp32, CPU): a tiny model + a LoRA adapter exported merged
loads with AutoModelForCausalLM.from_pretrained and gives the logits of PEFT on base + adapter and of
`llmstudio forward` on the exported folder (max |diff| <= 1e-4); forced sharding still loads; the
adapter-only export loads with PEFT; dtype, tokenizer files, generation config and model card are written."""
import json
import pathlib

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from conftest import run_cli
from tiny_models import lora_model, make_model

TOL = 1e-4
TARGETS = {"llama_mha_linear_rope_bias": ["q_proj", "v_proj", "o_proj", "up_proj"],
           "qwen2_gqa_bias_tied": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
           "qwen3_gqa_qknorm_sliding": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def _batch(vocab):
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(1, vocab, (2, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    ids[mask == 0] = 0
    return ids, mask


def _hf_logits(model, ids, mask):
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()


def _our_logits(llms_bin, folder, tmp_path, ids, mask):
    batch, out = tmp_path / "batch.json", tmp_path / "logits.safetensors"
    batch.write_text(json.dumps({"input_ids": ids.tolist(), "attention_mask": mask.tolist()}))
    run_cli(llms_bin, "forward", "-m", folder, "--input", batch, "--output", out, "--device", "cpu", "--dtype", "float32")
    return load_file(out)["logits"]


def _peft(variant, tmp_path):
    model_dir, adapter_dir = tmp_path / "model", tmp_path / "adapter"
    base = make_model(variant, model_dir)
    # Tokenizer files the export must carry over (contents need not be a real tokenizer for this test).
    (model_dir / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}", "eos_token": "</s>"}))
    (model_dir / "special_tokens_map.json").write_text(json.dumps({"eos_token": "</s>"}))
    peft_model = lora_model(base, TARGETS[variant], b_scale=0.2, seed=9)
    peft_model.eval()
    peft_model.save_pretrained(adapter_dir)
    return model_dir, adapter_dir, peft_model


def _diff(a, b, mask):
    v = mask.bool()
    return (a[v] - b[v]).abs().max().item()


@pytest.mark.parametrize("variant", sorted(TARGETS))
def test_merged_export_loads_in_transformers(llms_bin, tmp_path, variant):
    model_dir, adapter_dir, peft_model = _peft(variant, tmp_path)
    ids, mask = _batch(peft_model.config.vocab_size)
    ref = _hf_logits(peft_model, ids, mask)
    base_logits = _our_logits(llms_bin, model_dir, tmp_path, ids, mask)
    assert _diff(base_logits, ref, mask) > 1e-2, "the adapter must change the logits"

    for shard_args, expect_index in (([], False), (["--max-shard-size", "40KB"], True)):
        out = tmp_path / ("export_sharded" if expect_index else "export")
        proc = run_cli(llms_bin, "export", "-m", model_dir, "--adapter", adapter_dir, "--merge", "-o", out,
                       "--dtype", "float32", *shard_args)
        index = out / "model.safetensors.index.json"
        assert index.exists() == expect_index, proc.stdout
        if expect_index:
            shards = sorted(out.glob("model-*-of-*.safetensors"))
            assert len(shards) > 2 and set(json.loads(index.read_text())["weight_map"].values()) == {s.name for s in shards}
        for f in ("config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json", "README.md"):
            assert (out / f).exists(), f
        assert (out / "tokenizer_config.json").read_text() == (model_dir / "tokenizer_config.json").read_text()
        loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
        hf = _hf_logits(loaded, ids, mask)
        ours = _our_logits(llms_bin, out, tmp_path, ids, mask)
        d_peft, d_ours = _diff(hf, ref, mask), _diff(hf, ours, mask)
        print(f"{variant} {'sharded' if expect_index else 'single'}: transformers(export) vs PEFT(base+adapter) "
              f"{d_peft:.2e}, vs llmstudio forward(export) {d_ours:.2e}")
        assert d_peft <= TOL and d_ours <= TOL


def test_adapter_only_export_loads_with_peft(llms_bin, tmp_path):
    variant = "qwen2_gqa_bias_tied"
    model_dir, adapter_dir, peft_model = _peft(variant, tmp_path)
    out = tmp_path / "adapter_export"
    run_cli(llms_bin, "export", "-e", model_dir, "--adapter", adapter_dir, "--adapter-only", "-o", out)
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    fresh = make_model(variant, tmp_path / "model2")
    loaded = PeftModel.from_pretrained(fresh, out)
    loaded.eval()
    ids, mask = _batch(fresh.config.vocab_size)
    d = _diff(_hf_logits(loaded, ids, mask), _hf_logits(peft_model, ids, mask), mask)
    print(f"adapter-only export through PEFT vs the original adapter: {d:.2e}")
    assert d <= TOL


def test_bfloat16_export_and_errors(llms_bin, tmp_path):
    model_dir = tmp_path / "model"
    make_model("qwen2_gqa_bias_tied", model_dir)
    out = tmp_path / "bf16"
    run_cli(llms_bin, "export", "-m", model_dir, "-o", out, "--dtype", "bfloat16")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"
    assert all(t.dtype == torch.bfloat16 for t in load_file(out / "model.safetensors").values())
    loaded = AutoModelForCausalLM.from_pretrained(out)
    assert loaded.dtype == torch.bfloat16
    bad = run_cli(llms_bin, "export", "-m", model_dir, "-o", tmp_path / "x", "--max-shard-size", "2XB", check=False)
    assert bad.returncode != 0 and "2XB" in bad.stderr
    bad = run_cli(llms_bin, "export", "-m", model_dir, "-o", tmp_path / "x", "--adapter-only", check=False)
    assert bad.returncode != 0 and "--adapter-only needs --adapter" in bad.stderr
