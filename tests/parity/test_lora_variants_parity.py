"""LoRA variants against PEFT + torch (fp32, CPU, tiny models): rsLoRA (use_rslora), DoRA (use_dora) and
lora_unfreeze_layers (H2O's prepare_lora: base parameters whose PEFT name contains an entry train too). For each:
our DoRA magnitude init equals PEFT's; the first-step loss and every gradient, a few AdamW steps' updated
tensors and losses equal PEFT+torch's; our adapter file has PEFT's tensor names/shapes and config fields (plus
the unfrozen base tensors under their PEFT names) and PEFT loads it to our logits; `llmstudio export` merges it
(and PEFT's own adapter) to transformers-loadable weights giving the same logits.
freeze_layers (full fine-tuning): the named tensors are unchanged after the steps, the others match torch's.
intermediate_dropout: training-mode logits (attention dropout) differ from eval-mode, are reproducible for a seed
and equal transformers' with the same seed; eval-mode logits equal transformers'; `llmstudio train` runs with it."""
import json
import math
import subprocess

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from conftest import REPO, built_tool, run_cli
from tiny_models import make_model

STEPS = 4
LR, WD, R, ALPHA = 2e-3, 0.01, 4, 8.0
TOL_LOSS, TOL_GRAD, TOL_PARAM, TOL_LOGITS = 1e-5, 1e-4, 1e-5, 1e-4

# name: (tiny model, targets, use_rslora, use_dora, lora_unfreeze_layers)
CASES = {
    "rslora": ("llama_gqa_llama3rope_tied", ["q_proj", "v_proj"], True, False, []),
    "dora_bias": ("llama_mha_linear_rope_bias", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                  "down_proj"], False, True, []),
    "dora_rslora_tied": ("qwen2_gqa_bias_tied", ["q_proj", "v_proj", "down_proj"], True, True, []),
    # "embed"/"head" (H2O's choices), a norm, and the base weight + bias of a projection that carries an adapter.
    "unfreeze": ("llama_mha_linear_rope_bias", ["q_proj", "v_proj"], False, False,
                 ["embed", "head", "layers.1.post_attention_layernorm", "layers.2.self_attn.q_proj.base_layer"]),
    "unfreeze_dora_tied": ("qwen2_gqa_bias_tied", ["q_proj", "k_proj"], False, True, ["embed", "model.norm"]),
}


def _tool():
    return built_tool("llms_lora_step_tool")


def _batch(vocab):
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(1, vocab, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding
    ids[mask == 0] = 0
    labels = ids.clone()
    labels[mask == 0] = -100
    labels[:, :4] = -100
    labels[1, 3] = -100  # the first real token of the padded row is predicted from padding
    return ids, mask, labels


def _pos(mask):
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)


def _run_tool(tmp_path, model_dir, init, ids, mask, labels, *options, steps=STEPS, targets=("q_proj",)):
    (tmp_path / "batch.json").write_text(json.dumps(
        {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist()}))
    out = tmp_path / "ours"
    proc = subprocess.run([str(_tool()), model_dir, init, tmp_path / "batch.json", out, str(R), str(ALPHA),
                           ",".join(targets), str(steps), str(LR), str(WD), "TokenAveragedCrossEntropy",
                           *map(str, options)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out, load_file(out / "results.safetensors"), proc.stderr


def _saved_name(n):
    """PEFT's in-memory parameter name -> its name in adapter files (as get_peft_model_state_dict renames)."""
    n = n.replace(".default", "")
    return n[:-len(".weight")] if n.endswith("lora_magnitude_vector.weight") else n


def _decays(name, p):  # train/optimizer.cpp decays(): no weight decay for 1-D tensors, norms and biases
    return p.dim() >= 2 and "norm" not in name and ".bias" not in name


def _torch_steps(model, named, ids, mask, labels, steps):
    """AdamW steps of torch on `named` (our names -> parameters), param groups as our optimizer's."""
    groups = [{"params": [p for n, p in named.items() if _decays(n, p)], "weight_decay": WD},
              {"params": [p for n, p in named.items() if not _decays(n, p)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=LR, foreach=False)
    losses, grads = [], {}
    for step in range(steps):
        opt.zero_grad()
        logits = model(input_ids=ids, attention_mask=mask, position_ids=_pos(mask)).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
                                                 ignore_index=-100)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            grads = {n: p.grad.clone() for n, p in named.items()}
        opt.step()
    return losses, grads


def _max_diff(ours, ref, prefix):
    assert sorted(k[len(prefix):] for k in ours if k.startswith(prefix)) == sorted(ref), "tensor names differ"
    return max((ours[prefix + n] - t.detach()).abs().max().item() for n, t in ref.items())


def _valid_diff(a, b, mask):
    v = mask.bool()
    return (a[v] - b[v]).abs().max().item()


@pytest.mark.parametrize("case", sorted(CASES))
def test_variant_matches_peft(llms_bin, tmp_path, case):
    variant, targets, rslora, dora, unfreeze = CASES[case]
    model_dir = tmp_path / "model"
    base = make_model(variant, model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=targets,
                                                 use_rslora=rslora, use_dora=dora, task_type="CAUSAL_LM"))
    layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    expected = ALPHA / (math.sqrt(R) if rslora else R)
    assert layer.scaling["default"] == pytest.approx(expected)
    peft_init_magnitudes = {k: v.clone() for k, v in get_peft_model_state_dict(peft_model).items() if "magnitude" in k}
    # Non-trivial adapters: random B (PEFT's B = 0 is a no-op and gives A no gradient), magnitudes off the norms.
    torch.manual_seed(5)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn_like(p))
            elif "lora_magnitude_vector" in n:
                p.mul_(1 + 0.1 * torch.randn_like(p))
    # H2O's prepare_lora: unfreeze base parameters whose (PEFT) name contains an entry.
    for n, p in peft_model.named_parameters():
        if any(u in n for u in unfreeze):
            p.requires_grad = True
    init = {k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}
    save_file(init, tmp_path / "init.safetensors")

    ids, mask, labels = _batch(base.config.vocab_size)
    options = (["--rslora"] if rslora else []) + (["--dora"] if dora else []) + (
        ["--unfreeze", ",".join(unfreeze)] if unfreeze else [])
    out, ours, log = _run_tool(tmp_path, model_dir, tmp_path / "init.safetensors", ids, mask, labels, *options,
                               targets=targets)

    if dora:  # our attach_lora's magnitude vectors = PEFT's initial ones (row norms of the base weights)
        d_mag = _max_diff(ours, peft_init_magnitudes, "attached/")
        print(f"{case}: DoRA magnitude init max |diff| {d_mag:.2e}")
        assert d_mag <= 1e-6

    peft_model.train()
    named = {_saved_name(n): p for n, p in peft_model.named_parameters() if p.requires_grad}
    unfrozen = sorted(n for n in named if "lora_" not in n)
    assert bool(unfrozen) == bool(unfreeze)
    ref_losses, ref_grads = _torch_steps(peft_model, named, ids, mask, labels, STEPS)
    d_loss0 = abs(ours["losses"][0].item() - ref_losses[0])
    d_track = max(abs(a - b) for a, b in zip(ours["losses"].tolist(), ref_losses))
    d_grad = _max_diff(ours, ref_grads, "grad/")
    d_param = _max_diff(ours, named, "param/")
    moved = max((ours["param/" + n] - init.get(n, ours["param/" + n])).abs().max().item() for n in named if n in init)
    print(f"{case}: {len(named)} trainable ({len(unfrozen)} unfrozen base); loss {ref_losses[0]:.5f} -> "
          f"{ref_losses[-1]:.5f}; max |diff| first loss {d_loss0:.2e}, losses {d_track:.2e}, grads {d_grad:.2e}, "
          f"updated tensors after {STEPS} steps {d_param:.2e} (they moved by up to {moved:.2e})")
    assert d_loss0 <= TOL_LOSS and d_track <= TOL_LOSS and d_grad <= TOL_GRAD and d_param <= TOL_PARAM
    assert moved > 1e-3

    # Adapter files: PEFT's tensor names/shapes and config fields, plus the unfrozen base tensors.
    peft_model.save_pretrained(tmp_path / "peft_adapter")
    theirs = load_file(tmp_path / "peft_adapter" / "adapter_model.safetensors")
    mine = load_file(out / "adapter" / "adapter_model.safetensors")
    assert {k: tuple(v.shape) for k, v in mine.items()} == {
        **{k: tuple(v.shape) for k, v in theirs.items()}, **{n: tuple(named[n].shape) for n in unfrozen}}
    their_cfg = json.loads((tmp_path / "peft_adapter" / "adapter_config.json").read_text())
    my_cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    for key in ("peft_type", "r", "lora_alpha", "use_rslora", "use_dora", "bias", "fan_in_fan_out", "modules_to_save"):
        assert my_cfg[key] == their_cfg[key], key
    assert sorted(my_cfg["target_modules"]) == sorted(their_cfg["target_modules"])

    # PEFT loads our adapter (unfrozen tensors included) and gives our logits, and the PEFT-trained model's.
    peft_model.eval()
    with torch.no_grad():
        trained = peft_model(input_ids=ids, attention_mask=mask, position_ids=_pos(mask)).logits
        loaded = PeftModel.from_pretrained(make_model(variant, tmp_path / "fresh"), out / "adapter").eval()
        via_peft = loaded(input_ids=ids, attention_mask=mask, position_ids=_pos(mask)).logits
    d_load, d_trained = _valid_diff(via_peft, ours["logits"], mask), _valid_diff(trained, ours["logits"], mask)
    print(f"{case}: logits of PEFT with our adapter vs ours {d_load:.2e}; PEFT-trained vs ours {d_trained:.2e}")
    assert d_load <= TOL_LOGITS and d_trained <= TOL_LOGITS

    # Merged export (load_peft_adapter + merge_lora) of our adapter and of PEFT's, loaded with transformers.
    exports = {"ours": (out / "adapter", ours["logits"])}
    if not unfreeze:  # PEFT's own file lacks unfrozen base tensors (H2O keeps them in checkpoint.pth only)
        with torch.no_grad():
            merged_ref = peft_model.merge_and_unload()(input_ids=ids, attention_mask=mask, position_ids=_pos(mask)).logits
        exports["peft"] = (tmp_path / "peft_adapter", merged_ref)
    for who, (adapter, ref) in exports.items():
        merged = tmp_path / f"merged_{who}"
        run_cli(llms_bin, "export", "-m", model_dir, "--adapter", adapter, "--merge", "-o", merged, "--dtype", "float32")
        with torch.no_grad():
            hf = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
            logits = hf(input_ids=ids, attention_mask=mask, position_ids=_pos(mask)).logits
        d = _valid_diff(logits, ref, mask)
        print(f"{case}: export --merge of {who} adapter vs {'ours' if who == 'ours' else 'PEFT merge_and_unload'} {d:.2e}")
        assert d <= TOL_LOGITS


def test_freeze_layers_full_finetuning(tmp_path):
    variant = "llama_mha_linear_rope_bias"  # untied: "head" names lm_head.weight
    model_dir = tmp_path / "model"
    base = make_model(variant, model_dir)
    freeze = ["embed", "head", "layers.0.", "q_proj.bias"]
    ids, mask, labels = _batch(base.config.vocab_size)
    _, ours, log = _run_tool(tmp_path, model_dir, "-", ids, mask, labels, "--full", "--freeze", ",".join(freeze), steps=3)
    assert "freeze_layers:" in log, log
    initial = {n: p.detach().clone() for n, p in base.named_parameters()}
    frozen = sorted(n for n in initial if any(f in n for f in freeze))  # H2O: any(freeze_layer in name)
    assert "lm_head.weight" in frozen and "model.embed_tokens.weight" in frozen and "model.layers.2.self_attn.q_proj.bias" in frozen
    unchanged = max((ours["final/" + n] - initial[n]).abs().max().item() for n in frozen)
    moved = min((ours["final/" + n] - initial[n]).abs().max().item() for n in initial if n not in frozen)
    assert sorted(k[len("param/"):] for k in ours if k.startswith("param/")) == sorted(set(initial) - set(frozen))
    base.train()
    for n, p in base.named_parameters():
        p.requires_grad = n not in frozen
    named = {n: p for n, p in base.named_parameters() if p.requires_grad}
    _torch_steps(base, named, ids, mask, labels, 3)
    d_param = _max_diff(ours, named, "param/")
    print(f"freeze_layers {freeze}: {len(frozen)} of {len(initial)} tensors frozen, max |change| {unchanged:.1e}; "
          f"every other tensor moved (smallest max |change| {moved:.2e}); vs torch AdamW after 3 steps {d_param:.2e}")
    assert unchanged == 0.0 and moved > 1e-5 and d_param <= TOL_PARAM


def test_intermediate_dropout_attention(tmp_path):
    variant, p, seed = "llama_gqa_llama3rope_tied", 0.2, 123
    model_dir = tmp_path / "model"
    make_model(variant, model_dir)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attention_dropout=p,
                                              attn_implementation="sdpa")
    ids, mask, labels = _batch(hf.config.vocab_size)
    _, ours, _ = _run_tool(tmp_path, model_dir, "-", ids, mask, labels, "--attention-dropout", p,
                           "--dropout-seed", seed, steps=1)
    with torch.no_grad():
        hf.eval()
        eval_ref = hf(input_ids=ids, attention_mask=mask, position_ids=_pos(mask)).logits
        hf.train()
        torch.manual_seed(seed)
        train_ref = hf(input_ids=ids, attention_mask=mask, position_ids=_pos(mask)).logits
    a, b, c, ev = ours["train_logits/a"], ours["train_logits/b"], ours["train_logits/c"], ours["initial_eval_logits"]
    d_eval, d_train_eval = _valid_diff(ev, eval_ref, mask), _valid_diff(a, ev, mask)
    d_seed, d_other = _valid_diff(a, b, mask), _valid_diff(a, c, mask)
    d_hf = _valid_diff(a, train_ref, mask)
    print(f"attention dropout {p}: eval vs transformers {d_eval:.2e}; train vs eval {d_train_eval:.2e}; same seed "
          f"{d_seed:.1e}, seed+1 {d_other:.2e}; train vs transformers train (same seed) {d_hf:.2e}")
    assert d_eval <= TOL_LOGITS and d_seed == 0.0
    assert d_train_eval > 1e-2 and d_other > 1e-2
    assert d_hf <= TOL_LOGITS


def _train(llms_bin, model_dir, out, name, *sets):
    from test_train_features_e2e import BASE_SETS
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu", "--max-steps", 6]
    for s in [*BASE_SETS, f"llm_backbone={model_dir}", f"output_directory={out}", f"experiment_name={name}", *sets]:
        args += ["--set", s]
    run_cli(llms_bin, *args, cwd=REPO)
    exp = out / name
    assert json.loads((exp / "status.json").read_text())["status"] == "finished"
    losses = [m["loss"] for m in map(json.loads, (exp / "metrics.jsonl").read_text().splitlines()) if m["type"] == "train"]
    assert all(l == l for l in losses) and losses[-1] < losses[0], losses
    return exp, (exp / "logs.txt").read_text(), losses


def test_train_e2e_dora_rslora_unfreeze_dropout_and_freeze(llms_bin, tmp_path):
    """`llmstudio train` with the keys: DoRA + rsLoRA + lora_unfreeze_layers (embeddings and the blocks' norms) +
    intermediate_dropout with gradient checkpointing (the recomputation must redraw the same dropout and reach the
    unfrozen block tensors), a run starting from its weights (pretrained_weights), then full fine-tuning with
    freeze_layers."""
    from tiny_tokenized_model import make_tokenized_model
    model_dir = make_tokenized_model(tmp_path / "tiny")
    exp, log, losses = _train(llms_bin, model_dir, tmp_path, "dora", "training.use_dora=true", "training.use_rslora=true",
                              "training.lora_unfreeze_layers=[embed, input_layernorm]",
                              "architecture.intermediate_dropout=0.1",
                              "architecture.gradient_checkpointing=true")
    assert "lora_unfreeze_layers: 3 base tensors" in log and "intermediate_dropout: attention dropout" in log, log
    cfg = json.loads((exp / "adapter_config.json").read_text())
    assert cfg["use_dora"] is True and cfg["use_rslora"] is True
    adapter = load_file(exp / "adapter_model.safetensors")
    assert any(k.endswith("lora_magnitude_vector") for k in adapter) and "base_model.model.model.embed_tokens.weight" in adapter
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    embed0 = base.model.embed_tokens.weight.detach().clone()
    loaded = PeftModel.from_pretrained(base, exp).eval()  # PEFT reads the trained adapter, embeddings included
    d_embed = (loaded.base_model.model.model.embed_tokens.weight - embed0).abs().max().item()
    print(f"train DoRA+rsLoRA+unfreeze [embed, input_layernorm]+dropout 0.1: loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
          f"embeddings moved by {d_embed:.2e}")
    assert d_embed > 1e-4
    # architecture.pretrained_weights from that experiment: its adapters, magnitudes and unfrozen tensors load.
    cont, log, _ = _train(llms_bin, model_dir, tmp_path, "continued", "training.use_dora=true", "training.use_rslora=true",
                          "training.lora_unfreeze_layers=[embed, input_layernorm]", f"architecture.pretrained_weights={exp}")
    assert "pretrained weights:" in log, log

    exp, log, losses = _train(llms_bin, model_dir, tmp_path, "frozen", "training.lora=false",
                              "training.learning_rate=0.0005", "training.freeze_layers=[embed, layers.0.]")
    weights = load_file(exp / "model.safetensors")
    fresh = dict(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).named_parameters())
    frozen = [n for n in weights if "embed" in n or "layers.0." in n]
    assert "model.embed_tokens.weight" in frozen and all(torch.equal(weights[n], fresh[n]) for n in frozen)
    assert all(not torch.equal(weights[n], fresh[n]) for n in weights if n not in frozen)
    print(f"train full fine-tuning with freeze_layers [embed, layers.0.]: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert "freeze_layers:" in log, log
