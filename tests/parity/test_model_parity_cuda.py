"""bf16 forward parity on CUDA (runs where a CUDA GPU is visible; skipped elsewhere).

Tolerance: bf16 has an 8-bit mantissa, so no bf16 implementation matches fp32 closely. We measure
transformers' own bf16 error against its fp32 logits on the same GPU and require ours to be within
2x of it (plus 0.02 absolute), and print our difference to transformers-bf16 directly.
"""
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli
from tiny_models import VARIANTS, make_model, position_ids_from_mask

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bf16_cuda_logits_close_to_transformers(llms_bin, tmp_path, variant):
    model_dir = tmp_path / "model"
    ref = make_model(variant, model_dir).cuda()
    g = torch.Generator().manual_seed(3)
    lengths, total = [32, 20, 9], 32
    ids = torch.zeros(len(lengths), total, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, total - n:] = torch.randint(1, ref.config.vocab_size, (n,), generator=g)
        mask[b, total - n:] = 1
    pos = position_ids_from_mask(mask)
    with torch.no_grad():
        fp32 = ref(input_ids=ids.cuda(), attention_mask=mask.cuda(), position_ids=pos.cuda()).logits.float().cpu()
        hf_bf16 = ref.to(torch.bfloat16)(input_ids=ids.cuda(), attention_mask=mask.cuda(),
                                         position_ids=pos.cuda()).logits.float().cpu()
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"input_ids": ids.tolist(), "attention_mask": mask.tolist()}))
    out = tmp_path / "logits.safetensors"
    run_cli(llms_bin, "forward", "-m", model_dir, "--input", batch, "--output", out, "--device", "cuda",
            "--dtype", "bfloat16")
    ours = load_file(out)["logits"]
    v = mask.bool()
    ours_err = (ours[v] - fp32[v]).abs().max().item()
    hf_err = (hf_bf16[v] - fp32[v]).abs().max().item()
    direct = (ours[v] - hf_bf16[v]).abs().max().item()
    tol = 2 * hf_err + 0.02
    print(f"{variant}: bf16 cuda: ours-vs-fp32 {ours_err:.4g}, transformers-bf16-vs-fp32 {hf_err:.4g}, "
          f"ours-vs-transformers-bf16 {direct:.4g}, tolerance {tol:.4g}")
    assert ours_err <= tol


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fp32_cuda_logits_match(llms_bin, tmp_path, variant):
    model_dir = tmp_path / "model"
    ref = make_model(variant, model_dir).cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    ids = torch.randint(1, ref.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = ref(input_ids=ids.cuda()).logits.float().cpu()
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"input_ids": ids.tolist()}))
    out = tmp_path / "logits.safetensors"
    run_cli(llms_bin, "forward", "-m", model_dir, "--input", batch, "--output", out, "--device", "cuda",
            "--dtype", "float32")
    diff = (load_file(out)["logits"] - expected).abs().max().item()
    print(f"{variant}: fp32 cuda max |diff| = {diff:.3g}")
    assert diff <= 1e-3
