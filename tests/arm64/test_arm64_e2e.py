"""The aarch64 build under emulation (scripts/test-arm64.sh, `make test-arm64`): the cross-compiled `llmstudio`
runs through qemu-aarch64 on the x86_64 host. `env --json` reports aarch64 and the CPU-only libtorch; greedy
generation on a tiny random Llama with a real BPE tokenizer and chat template gives exactly transformers' ids
(computed natively, fp32 CPU); a tiny model trains a few LoRA steps (finite losses, a finished experiment with
its adapter) and `generate --adapter` with that aarch64-written adapter gives exactly transformers + PEFT's ids.
LLMS_ARM64_BIN: the aarch64 binary (default build-arm64/bin/llmstudio); LLMS_QEMU: the emulator command."""
import json
import math
import os
import pathlib
import shlex
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "parity"))
from tiny_chat_model import greedy_ids, make_chat_model  # noqa: E402

NEW = 12
NEVER_EOS = 100000  # an id no tiny model produces: every row runs the full NEW tokens
STEPS = 4


@pytest.fixture(scope="module")
def arm64_bin():
    path = pathlib.Path(os.environ.get("LLMS_ARM64_BIN", REPO / "build-arm64" / "bin" / "llmstudio"))
    if not path.exists():
        pytest.fail(f"aarch64 llmstudio not found at {path}: run `make test-arm64` (scripts/test-arm64.sh builds it)")
    header = path.read_bytes()[:20]
    machine = int.from_bytes(header[18:20], "little")
    assert header[:4] == b"\x7fELF" and machine == 183, f"{path} is not an aarch64 ELF (e_machine {machine}, 183 expected)"
    return path


def run(binary, *args, timeout=1200, **kw):
    cmd = [*shlex.split(os.environ.get("LLMS_QEMU", "qemu-aarch64")), str(binary), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def test_env_reports_aarch64(arm64_bin):
    env = json.loads(run(arm64_bin, "env", "--json").stdout)
    facts = env.get("platform", env)
    print(f"llmstudio env under qemu: os={facts['os']} arch={facts['arch']} torch={facts['torch_version']}")
    assert facts["os"] == "linux" and facts["arch"] == "aarch64"
    assert facts["cuda"]["built"] is False, "the emulated build uses the CPU-only aarch64 wheel"


def test_greedy_generation_matches_transformers(arm64_bin, tmp_path):
    d = tmp_path / "chat"
    model, hf_tok = make_chat_model(d)
    got = json.loads(run(arm64_bin, "generate", "-m", d, "-p", "hello there", "--device", "cpu", "--dtype", "float32",
                         "--max-new-tokens", NEW, "--json").stdout.splitlines()[0])
    text = hf_tok.apply_chat_template([{"role": "user", "content": "hello there"}], add_generation_prompt=True,
                                      tokenize=False)
    ids = hf_tok.encode(text, add_special_tokens=False)
    assert got["prompt_ids"] == ids
    expected = greedy_ids(model, ids, NEW)
    print(f"aarch64 greedy reply {got['text']!r}; transformers (x86_64) ids {expected}")
    assert got["token_ids"] == expected


def test_train_few_steps_then_generate_with_adapter(arm64_bin, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model_dir = tmp_path / "tiny"
    base, _ = make_chat_model(model_dir)  # weights scaled so that greedy continuations vary (not one token repeated)
    sets = ["training.epochs=1", "training.batch_size=4", "training.learning_rate=0.05", "training.lora_dropout=0.0",
            "training.evaluation_epochs=1", "tokenizer.max_length=64", "environment.seed=3",
            f"llm_backbone={model_dir}", f"output_directory={tmp_path}", "experiment_name=run"]
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu", "--max-steps", STEPS]
    for s in sets:
        args += ["--set", s]
    run(arm64_bin, *args, cwd=REPO)
    exp = tmp_path / "run"
    status = json.loads((exp / "status.json").read_text())
    assert status["status"] == "finished" and status["step"] == STEPS, status
    metrics = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if m["type"] == "train"]
    print(f"aarch64 training losses over {STEPS} steps: {[round(x, 4) for x in losses]}")
    assert len(losses) == STEPS and all(math.isfinite(x) and x > 0 for x in losses)
    for f in ["cfg.yaml", "adapter_config.json", "adapter_model.safetensors", "tokenizer.json"]:
        assert (exp / f).exists(), f
    adapter = load_file(exp / "adapter_model.safetensors")
    assert max(t.abs().max().item() for k, t in adapter.items() if "lora_B" in k) > 0, "training must move lora_B"

    prompt = [5, 17, 42, 99, 7, 3]
    ids = torch.tensor([prompt])
    gen = dict(attention_mask=torch.ones_like(ids), max_new_tokens=NEW, do_sample=False, num_beams=1,
               eos_token_id=NEVER_EOS, pad_token_id=0)
    with torch.no_grad():
        base_ids = base.generate(input_ids=ids, **gen)[0, len(prompt):].tolist()
    out = run(arm64_bin, "generate", "-m", model_dir, "--adapter", exp, "--ids", " ".join(map(str, prompt)), "--json",
              "--device", "cpu", "--dtype", "float32", "--max-new-tokens", NEW, "--eos-id", NEVER_EOS).stdout
    ours = json.loads(out.splitlines()[0])["token_ids"]
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), exp).eval()
    with torch.no_grad():
        expected = peft_model.generate(input_ids=ids, **gen)[0, len(prompt):].tolist()
    print(f"aarch64 generate --adapter ids {ours}; transformers + PEFT ids {expected}; base model ids {base_ids}")
    assert len(set(expected)) > 2 and expected != base_ids, "the check needs a varied reply that the adapter changed"
    assert ours == expected
