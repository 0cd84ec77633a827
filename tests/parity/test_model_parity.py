"""Forward-pass parity with transformers (fp32, CPU): logits of our `llmstudio forward` against the
transformers model that wrote the checkpoint, with and without left padding."""
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli
from tiny_models import VARIANTS, make_model, position_ids_from_mask

TOL = 1e-4


def _batch(vocab, lengths, total, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), total, dtype=torch.long)
    mask = torch.zeros(len(lengths), total, dtype=torch.long)
    for b, n in enumerate(lengths):  # left padding with pad id 0
        ids[b, total - n:] = torch.randint(1, vocab, (n,), generator=g)
        mask[b, total - n:] = 1
    return ids, mask


def _ours(llms_bin, model_dir, tmp_path, ids, mask):
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"input_ids": ids.tolist(), "attention_mask": mask.tolist()}))
    out = tmp_path / "logits.safetensors"
    run_cli(llms_bin, "forward", "-m", model_dir, "--input", batch, "--output", out, "--device", "cpu",
            "--dtype", "float32")
    return load_file(out)["logits"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_forward_logits_match_transformers(llms_bin, tmp_path, variant):
    model_dir = tmp_path / "model"
    ref = make_model(variant, model_dir)
    ref.config._attn_implementation = "eager"
    vocab = ref.config.vocab_size

    # 1) no padding, length 12 (longer than Mistral's sliding window of 5)
    ids, mask = _batch(vocab, [12, 12], 12, seed=1)
    with torch.no_grad():
        expected = ref(input_ids=ids).logits
    ours = _ours(llms_bin, model_dir, tmp_path, ids, torch.ones_like(ids))
    diff = (ours - expected).abs().max().item()
    print(f"{variant}: no padding, max |diff| = {diff:.3g} (logit scale {expected.abs().max().item():.3g})")
    assert diff <= TOL

    # 2) left padding: three sequences of different lengths
    ids, mask = _batch(vocab, [11, 7, 3], 11, seed=2)
    with torch.no_grad():
        expected = ref(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
    ours = _ours(llms_bin, model_dir, tmp_path, ids, mask)
    valid = mask.bool()
    diff = (ours[valid] - expected[valid]).abs().max().item()
    print(f"{variant}: left padding, max |diff| over real tokens = {diff:.3g}")
    assert diff <= TOL
    assert torch.isfinite(ours).all(), "padding positions must not produce NaN/inf"

    # 3) a left-padded sequence gives the logits of the same sequence alone (attention ignores padding)
    if "sliding" not in variant:  # the window counts cache slots, padding included, as transformers does
        alone = _ours(llms_bin, model_dir, tmp_path, ids[2:3, -3:], mask[2:3, -3:])
        diff = (alone[0] - ours[2, -3:]).abs().max().item()
        print(f"{variant}: padded vs alone, max |diff| = {diff:.3g}")
        assert diff <= TOL


def test_broken_checkpoints_are_clear_errors(llms_bin, tmp_path):
    from safetensors.torch import save_file
    model_dir = tmp_path / "m"
    make_model("qwen2_gqa_bias_tied", model_dir)
    tensors = load_file(model_dir / "model.safetensors")
    # missing tensor
    broken = dict(tensors)
    del broken["model.layers.1.self_attn.k_proj.bias"]
    save_file(broken, model_dir / "model.safetensors", metadata={"format": "pt"})
    proc = run_cli(llms_bin, "info", model_dir, check=False)
    assert proc.returncode != 0 and "model.layers.1.self_attn.k_proj.bias" in proc.stderr, proc.stderr
    assert "missing" in proc.stderr
    # mis-shaped tensor
    broken = dict(tensors)
    broken["model.norm.weight"] = torch.ones(63)
    save_file(broken, model_dir / "model.safetensors", metadata={"format": "pt"})
    proc = run_cli(llms_bin, "forward", "-m", model_dir, "--ids", "1 2 3", "--device", "cpu", check=False)
    assert proc.returncode != 0 and "model.norm.weight" in proc.stderr and "[64]" in proc.stderr, proc.stderr
    # unsupported architecture
    save_file(tensors, model_dir / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["architectures"] = ["GPTNeoXForCausalLM"]
    (model_dir / "config.json").write_text(json.dumps(cfg))
    proc = run_cli(llms_bin, "info", model_dir, check=False)
    assert proc.returncode != 0 and "GPTNeoXForCausalLM" in proc.stderr and "LlamaForCausalLM" in proc.stderr


def test_info_describes_the_model(llms_bin, tmp_path):
    model_dir = tmp_path / "m"
    ref = make_model("llama_gqa_llama3rope_tied", model_dir)
    info = json.loads(run_cli(llms_bin, "info", model_dir, "--json", "--tensors").stdout)
    n_params = sum(p.numel() for p in ref.parameters())  # tied embeddings counted once
    assert info["architecture"] == "LlamaForCausalLM"
    assert info["model_parameter_count"] == n_params
    assert info["parameter_count"] == n_params
    assert info["memory_bytes"]["float32"] == 4 * n_params
    assert info["config"]["rope_type"] == "llama3"
    assert {t["name"] for t in info["tensors"]} == {n for n, _ in ref.named_parameters()}
    text = run_cli(llms_bin, "info", model_dir).stdout
    assert "LlamaForCausalLM" in text and "tied" in text
