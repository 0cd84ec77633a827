"""`llmstudio train` end to end on CPU: a tiny model with a real tokenizer, the example dataset in examples/,
10 steps; loss decreases; artefacts exist and PEFT loads the adapter; a SIGINT at a chosen step writes a checkpoint
and resuming (AdamW, RMSprop, Adadelta) gives the same adapter as an uninterrupted run; bad configs/data fail
clearly without a finished experiment."""
import json
import os

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, run_cli
from tiny_tokenized_model import make_tokenized_model

BASE_SETS = ["training.epochs=1", "training.batch_size=4", "training.learning_rate=0.003", "training.lora_dropout=0.1",
             "training.evaluation_epochs=1", "tokenizer.max_length=64", "environment.seed=3"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tokenized_model(tmp_path_factory.mktemp("m") / "tiny")


def _train(llms_bin, model_dir, out, name, *extra, check=True, **kw):
    sets = [*BASE_SETS, f"llm_backbone={model_dir}", f"output_directory={out}", f"experiment_name={name}"]
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu"]
    for s in sets:
        args += ["--set", s]
    return run_cli(llms_bin, *args, *extra, check=check, cwd=REPO, **kw)


def _metrics(exp):
    return [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]


def test_train_ten_steps_loss_decreases_and_artefacts_exist(llms_bin, model_dir, tmp_path):
    _train(llms_bin, model_dir, tmp_path, "run", "--max-steps", 10)
    exp = tmp_path / "run"
    status = json.loads((exp / "status.json").read_text())
    assert status["status"] == "finished" and status["step"] == 10
    train = [m for m in _metrics(exp) if m["type"] == "train"]
    assert [m["step"] for m in train] == list(range(1, 11))
    first, last = sum(m["loss"] for m in train[:3]) / 3, sum(m["loss"] for m in train[-3:]) / 3
    print(f"loss first 3 steps {first:.4f}, last 3 steps {last:.4f}")
    assert last < first
    assert any(m["type"] == "validation" and m["perplexity"] > 1 for m in _metrics(exp))
    for f in ["cfg.yaml", "logs.txt", "adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
              "checkpoint/trainer_state.json"]:
        assert (exp / f).exists(), f
    # PEFT loads the adapter onto the base model.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), exp)
    assert sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n) > 0


# The stop comes from LLMS_TEST_SIGINT_AT_STEP (apps/llmstudio/cmd_train.cpp): the process raises a real SIGINT
# right after that step, so the run's own signal handler stops it at a known step, on any machine. Each optimizer
# resumes from its saved state (AdamW's moments, RMSprop's square average and momentum buffer, Adadelta's two
# running averages) to the uninterrupted run's adapter.
@pytest.mark.parametrize("optimizer,lr", [("AdamW", 0.003), ("RMSprop", 0.003), ("Adadelta", 1.0)])
def test_sigint_checkpoints_and_resume_matches_uninterrupted(llms_bin, model_dir, tmp_path, optimizer, lr):
    steps, cut_at = 12, 5
    opt = ["--set", f"training.optimizer={optimizer}", "--set", f"training.learning_rate={lr}"]
    _train(llms_bin, model_dir, tmp_path, "straight", "--max-steps", steps, *opt)
    exp = tmp_path / "cut"
    proc = _train(llms_bin, model_dir, tmp_path, "cut", "--max-steps", steps, *opt, check=False,
                  env={**os.environ, "LLMS_TEST_SIGINT_AT_STEP": str(cut_at)})
    status = json.loads((exp / "status.json").read_text())
    assert proc.returncode == 130, proc.stderr
    assert status["status"] == "interrupted" and status["step"] == cut_at, status
    assert json.loads((exp / "checkpoint" / "trainer_state.json").read_text())["step"] == cut_at
    assert [m["step"] for m in _metrics(exp) if m["type"] == "train"] == list(range(1, cut_at + 1))
    assert not (exp / "adapter_model.safetensors").exists(), "an interrupted run must not look finished"
    run_cli(llms_bin, "train", "--resume", exp, "--device", "cpu", "--max-steps", steps, cwd=REPO)
    assert json.loads((exp / "status.json").read_text())["status"] == "finished"
    a = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    b = load_file(exp / "adapter_model.safetensors")
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    moved = max(a[k].abs().max().item() for k in a if "lora_B" in k)  # B starts at zero
    print(f"{optimizer}: interrupted at step {status['step']}; resumed adapter vs uninterrupted: max |diff| {diff:.3g} "
          f"(lora_B grew to {moved:.3g})")
    assert diff <= 1e-6 and moved > 1e-3
    assert [m["loss"] for m in _metrics(tmp_path / "straight") if m["type"] == "train"][-1] == pytest.approx(
        [m["loss"] for m in _metrics(exp) if m["type"] == "train"][-1], abs=1e-5)


# A run that fails mid-way (LLMS_TEST_FAIL_AT_STEP throws right after that step) keeps its real progress in its status
# and its last checkpoint, and exits non-zero with the error.
def test_failed_run_keeps_its_progress(llms_bin, model_dir, tmp_path):
    exp = tmp_path / "fails"
    proc = _train(llms_bin, model_dir, tmp_path, "fails", "--max-steps", 8, "--set", "training.evaluation_epochs=0.1",
                  check=False, env={**os.environ, "LLMS_TEST_FAIL_AT_STEP": "6"})
    status = json.loads((exp / "status.json").read_text())
    print("status of the failed run:", status)
    assert proc.returncode != 0 and "LLMS_TEST_FAIL_AT_STEP" in proc.stderr, proc.stderr
    assert status["status"] == "failed" and status["step"] == 6 and status["total_steps"] == 8, status
    assert "after step 6" in status["message"]
    assert [m["step"] for m in _metrics(exp) if m["type"] == "train"] == list(range(1, 7))
    assert not (exp / "adapter_model.safetensors").exists(), "a failed run must not look finished"
    checkpoint_step = json.loads((exp / "checkpoint" / "trainer_state.json").read_text())["step"]
    assert 1 <= checkpoint_step <= 6, checkpoint_step


@pytest.mark.parametrize("setting,message", [
    ("training.learning_rate=-1", "learning_rate"),
    ("training.optimizer=Adafactor", "Adafactor"),
    ("architecture.backbone_dtype=int4", "not supported yet"),
    ("dataset.answer_column=nope", "nope"),
    ("dataset.train_dataframe=/nonexistent/train.csv", "/nonexistent/train.csv"),
    ("training.no_such_key=1", "no_such_key"),
])
def test_bad_configs_fail_clearly(llms_bin, model_dir, tmp_path, setting, message):
    proc = _train(llms_bin, model_dir, tmp_path, "bad", "--set", setting, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    status = tmp_path / "bad" / "status.json"
    assert not status.exists() or json.loads(status.read_text())["status"] != "finished"


def test_broken_data_fails_clearly(llms_bin, model_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b'id,parent_id,instruction,output\n1,,"unclosed quote,x\n')
    proc = _train(llms_bin, model_dir, tmp_path, "bad", "--set", f"dataset.train_dataframe={bad}", check=False)
    assert proc.returncode != 0 and "bad.csv" in proc.stderr, proc.stderr
    cyc = tmp_path / "cycle.csv"
    cyc.write_text("id,parent_id,instruction,output\n1,2,a,b\n2,1,c,d\n3,,e,f\n")
    proc = _train(llms_bin, model_dir, tmp_path, "bad2", "--set", f"dataset.train_dataframe={cyc}", check=False)
    assert proc.returncode != 0 and "circular" in proc.stderr.lower(), proc.stderr
