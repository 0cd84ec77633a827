"""Our optimizers against torch.optim, with the hyperparameters H2O LLM Studio passes
(llm_studio/src/optimizers.py: SGD momentum 0.9 + Nesterov, RMSprop momentum 0.9 + alpha 0.9, Adadelta and
Adam(W) with torch's defaults) and its parameter groups (weight decay 0 for biases and norms).

The same parameters and per-step gradients (and a changing learning-rate scale, as a schedule gives) go through
llms_optimizer_tool and through torch.optim; parameters and optimizer state must agree after every run, also
when the state is saved and loaded into a fresh optimizer halfway (what a checkpoint resume does).
"""
import subprocess
from functools import partial

import pytest
import torch
from safetensors.torch import load_file, save_file
from conftest import built_tool

STEPS = 7
RESUME_AT = 3
WD = 0.05
# torch.optim class as H2O builds it, the learning rate used here (large enough that the parameters move
# visibly; H2O passes training.learning_rate), and torch's state names -> ours.
H2O = {
    "AdamW": (torch.optim.AdamW, 1e-2, {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}),
    "Adam": (torch.optim.Adam, 1e-2, {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}),
    "SGD": (partial(torch.optim.SGD, momentum=0.9, nesterov=True), 5e-2, {"momentum_buffer": "exp_avg"}),
    "RMSprop": (partial(torch.optim.RMSprop, momentum=0.9, alpha=0.9), 1e-2,
                {"square_avg": "square_avg", "momentum_buffer": "momentum_buffer"}),
    "Adadelta": (torch.optim.Adadelta, 1.0, {"square_avg": "square_avg", "acc_delta": "acc_delta"}),
}
TOL = 2e-6  # float32, the same operations in the same order


def _tool():
    return built_tool("llms_optimizer_tool")


def _inputs():
    g = torch.Generator().manual_seed(5)
    params = {"layers.0.proj.weight": torch.randn(6, 4, generator=g),  # decayed (2-D)
              "layers.0.proj.bias": torch.randn(6, generator=g),       # no decay (bias)
              "layers.0.norm.weight": 1 + 0.1 * torch.randn(4, generator=g)}  # no decay (norm)
    grads = [{n: torch.randn(p.shape, generator=g) * (0.5 + s) for n, p in params.items()} for s in range(STEPS)]
    lr_scale = torch.tensor([0.2, 0.6, 1.0, 0.9, 0.7, 0.4, 0.1])
    return params, grads, lr_scale


def _torch_run(name, lr, params, grads, lr_scale):
    cls = H2O[name][0]
    ps = {n: p.clone().requires_grad_(True) for n, p in params.items()}
    decay = [ps["layers.0.proj.weight"]]
    no_decay = [ps["layers.0.proj.bias"], ps["layers.0.norm.weight"]]
    opt = cls([{"params": decay, "lr": lr, "weight_decay": WD}, {"params": no_decay, "lr": lr, "weight_decay": 0}],
              lr=lr, weight_decay=WD, foreach=False)
    for s in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = lr * float(lr_scale[s])
        for n, p in ps.items():
            p.grad = grads[s][n].clone()
        opt.step()
    return ps, opt


@pytest.mark.parametrize("name", list(H2O))
def test_optimizer_matches_torch_optim(tmp_path, name):
    params, grads, lr_scale = _inputs()
    lr = H2O[name][1]
    inputs = {f"param/{n}": p for n, p in params.items()}
    inputs.update({f"grad/{s}/{n}": g for s in range(STEPS) for n, g in grads[s].items()})
    inputs["lr_scale"] = lr_scale
    save_file(inputs, tmp_path / "in.safetensors")

    ref, ref_opt = _torch_run(name, lr, params, grads, lr_scale)
    moved = max((ref[n] - params[n]).abs().max().item() for n in params)
    for resume_at in (0, RESUME_AT):
        out = tmp_path / f"out_{resume_at}"
        proc = subprocess.run([str(_tool()), name, str(lr), str(WD), tmp_path / "in.safetensors", out, str(resume_at)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        ours = load_file(out / "results.safetensors")
        param_diff = max((ours[f"param/{n}"] - ref[n].detach()).abs().max().item() for n in params)
        state_diff = 0.0
        for n, p in ref.items():
            for torch_key, our_key in H2O[name][2].items():
                state_diff = max(state_diff, (ours[f"state/{our_key}/{n}"] - ref_opt.state[p][torch_key]).abs().max().item())
        assert ours["state/step"].item() == STEPS
        print(f"{name} (resume at {resume_at}): max |param diff| {param_diff:.2e}, max |state diff| {state_diff:.2e}, "
              f"parameters moved up to {moved:.3f}")
        assert param_diff <= TOL and state_diff <= TOL
    assert moved > 100 * TOL  # the comparison is not trivially met by parameters that barely moved
