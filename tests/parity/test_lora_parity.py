"""LoRA training parity with transformers + PEFT (fp32, CPU): same tiny model, same batch, same adapter
init and hyper-parameters -> first-step loss within 1e-5, adapter gradients within 1e-4, the loss over 20
AdamW steps tracks PEFT's, and PEFT loads our saved adapter and reproduces our logits."""
import subprocess

import pytest
import torch
from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file, save_file

from tiny_models import lora_model, make_model
from conftest import built_tool

STEPS = 20
TARGETS = {"qwen2_gqa_bias_tied": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
           "llama_gqa_llama3rope_tied": ["q_proj", "v_proj"],
           "qwen3_gqa_qknorm_sliding": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def _tool():
    return built_tool("llms_lora_step_tool")


def _batch(vocab):
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(1, vocab, (3, 14), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    mask[2, :9] = 0
    ids[mask == 0] = 0
    labels = ids.clone()
    labels[mask == 0] = -100
    labels[:, :5] = -100  # "prompt" positions are not trained
    # The first real token of a left-padded row is predicted from a padding position: never a target.
    first = mask.argmax(1)
    labels[torch.arange(ids.size(0)), first] = -100
    return ids, mask, labels


@pytest.mark.parametrize("variant", sorted(TARGETS))
@pytest.mark.parametrize("loss_kind", ["TokenAveragedCrossEntropy", "SampleAveragedCrossEntropy"])
def test_lora_matches_peft(tmp_path, variant, loss_kind):
    import json
    model_dir = tmp_path / "model"
    base = make_model(variant, model_dir)
    targets = TARGETS[variant]
    r, alpha, lr, wd = 4, 8.0, 2e-3, 0.01
    peft_model = lora_model(base, targets, r, alpha, b_scale=0.05, seed=5)
    init = {k: v.contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}
    save_file(init, tmp_path / "init.safetensors")

    ids, mask, labels = _batch(base.config.vocab_size)
    (tmp_path / "batch.json").write_text(json.dumps(
        {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist()}))
    out = tmp_path / "ours"
    proc = subprocess.run([str(_tool()), model_dir, tmp_path / "init.safetensors", tmp_path / "batch.json", out,
                           str(r), str(alpha), ",".join(targets), str(STEPS), str(lr), str(wd), loss_kind],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ours = load_file(out / "results.safetensors")

    # Reference: the same steps with PEFT and torch.optim.AdamW (weight decay on the 2-D adapter matrices).
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd, foreach=False)
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)

    def loss_fn():
        logits = peft_model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
        sl, tl = logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1)
        if loss_kind == "TokenAveragedCrossEntropy":
            return torch.nn.functional.cross_entropy(sl, tl, ignore_index=-100)
        per = torch.nn.functional.cross_entropy(sl, tl, ignore_index=-100, reduction="none").view(ids.size(0), -1)
        valid = (labels[:, 1:] != -100).float()
        return (per.sum(1) / valid.sum(1)).mean()

    ref_losses, ref_grads = [], {}
    for step in range(STEPS):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        ref_losses.append(loss.item())
        if step == 0:
            for n, p in peft_model.named_parameters():
                if p.requires_grad:
                    ref_grads[n.replace(".default", "")] = p.grad.clone()
        opt.step()

    d_loss0 = abs(ours["losses"][0].item() - ref_losses[0])
    d_grad = max((ours["grad/" + n] - g).abs().max().item() for n, g in ref_grads.items())
    assert len(ref_grads) == sum(1 for k in ours if k.startswith("grad/"))
    d_track = max(abs(a - b) for a, b in zip(ours["losses"].tolist(), ref_losses))
    print(f"{variant} {loss_kind}: first loss {ref_losses[0]:.5f} |diff| {d_loss0:.2e}; max grad |diff| {d_grad:.2e}; "
          f"20-step loss {ref_losses[0]:.4f} -> {ref_losses[-1]:.4f}, max |diff| over steps {d_track:.2e}")
    assert d_loss0 <= 1e-5
    assert d_grad <= 1e-4
    assert d_track <= 1e-4, "loss curves diverge"
    assert ref_losses[-1] < ref_losses[0]

    # PEFT loads our adapter and reproduces our logits.
    fresh = make_model(variant, tmp_path / "model2")
    loaded = PeftModel.from_pretrained(fresh, out / "adapter")
    loaded.eval()
    with torch.no_grad():
        peft_logits = loaded(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    v = mask.bool()
    d_logits = (peft_logits[v] - ours["logits"][v]).abs().max().item()
    print(f"{variant}: PEFT with our adapter vs our logits, max |diff| {d_logits:.2e}")
    assert d_logits <= 1e-4
