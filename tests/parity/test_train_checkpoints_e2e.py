"""training.save_checkpoint: each_evaluation_epoch and architecture.pretrained_weights, end to end on CPU with the
tiny tokenized model and 64 + 8 rows of the example data.

- each_evaluation_epoch: the folders are named as H2O LLM Studio's run_train names them (epoch_{epoch}_step_{itr},
  recomputed here with its formula); each holds the model of its evaluation (equal to a run stopped at that step,
  under a constant schedule), PEFT loads it, and the final model is the last evaluation's.
- pretrained_weights: a run started from another experiment (its folder, checkpoint/ or an epoch folder; LoRA or
  full weights, across the two) validates, before its first step, with exactly the source's last validation loss;
  wrong folders and mismatched shapes fail with messages that name the problem.
"""
import csv
import json
import os
import shutil

import pytest
from safetensors.torch import load_file

from conftest import REPO, run_cli
from tiny_tokenized_model import make_tokenized_model

BATCHES_PER_EPOCH = 16  # 64 rows, batch 4 (grad_accumulation 2: 8 optimizer steps per epoch)
SETS = ["training.batch_size=4", "training.grad_accumulation=2", "training.learning_rate=0.003",
        "training.schedule=Constant", "training.warmup_epochs=0", "training.lora_dropout=0.0",
        "tokenizer.max_length=64", "environment.seed=3", "dataset.validation_strategy=custom"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ck")
    rows = [r for r in csv.DictReader(open(REPO / "examples" / "data" / "train.csv", encoding="utf-8")) if not r["parent_id"]]
    for name, part in [("train.csv", rows[:64]), ("val.csv", rows[64:72])]:
        with open(root / name, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(part)
    return {"root": root, "model": make_tokenized_model(root / "tiny")}


def _train(llms_bin, setup, out, name, *sets, max_steps=None, backbone=None, check=True, env=None):
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu"]
    if max_steps:
        args += ["--max-steps", max_steps]
    root = setup["root"]
    for s in [*SETS, f"dataset.train_dataframe={root / 'train.csv'}", f"dataset.validation_dataframe={root / 'val.csv'}",
              f"llm_backbone={backbone or setup['model']}", f"output_directory={out}", f"experiment_name={name}", *sets]:
        args += ["--set", s]
    return run_cli(llms_bin, *args, check=check, cwd=REPO, env=env)


def _validation(exp):
    return [m for m in map(json.loads, (exp / "metrics.jsonl").read_text().splitlines()) if m["type"] == "validation"]


def _max_diff(a, b):
    assert sorted(a) == sorted(b)
    return max((a[k] - b[k]).abs().max().item() for k in a)


def h2o_evaluation_folders(batches_per_epoch, evaluation_epochs, epochs):
    """H2O's run_train: evaluation_step = max(int(epoch_steps * evaluation_epochs), 1) batches; at each batch itr
    (0-based, per epoch) with (itr + 1) % evaluation_step == 0 it saves output/epoch_{epoch}_step_{itr}."""
    every = max(int(batches_per_epoch * evaluation_epochs), 1)
    return [f"epoch_{e}_step_{i}" for e in range(epochs) for i in range(batches_per_epoch) if (i + 1) % every == 0]


def test_each_evaluation_epoch_saves_h2o_named_folders(llms_bin, setup, tmp_path):
    _train(llms_bin, setup, tmp_path, "each", "training.epochs=2", "training.evaluation_epochs=0.5",
           "training.save_checkpoint=each_evaluation_epoch")
    exp = tmp_path / "each"
    expected = h2o_evaluation_folders(BATCHES_PER_EPOCH, 0.5, 2)
    assert sorted(p.name for p in exp.glob("epoch_*")) == sorted(expected)
    assert [m["step"] for m in _validation(exp)] == [4, 8, 12, 16]
    assert (exp / "checkpoint" / "trainer_state.json").exists()
    # The first evaluation's folder holds the model of step 4: a run stopped there (constant schedule) has it too.
    _train(llms_bin, setup, tmp_path, "four", "training.epochs=2", max_steps=4)
    first = _max_diff(load_file(exp / expected[0] / "adapter_model.safetensors"),
                      load_file(tmp_path / "four" / "adapter_model.safetensors"))
    last = _max_diff(load_file(exp / expected[-1] / "adapter_model.safetensors"),
                     load_file(exp / "adapter_model.safetensors"))
    early_vs_final = _max_diff(load_file(exp / expected[0] / "adapter_model.safetensors"),
                               load_file(exp / "adapter_model.safetensors"))
    print(f"folders {expected}; {expected[0]} vs a 4-step run: max |diff| {first:.3g}; {expected[-1]} vs the final "
          f"model: {last:.3g}; first vs last folder: {early_vs_final:.3g}")
    assert first <= 1e-6 and last == 0 and early_vs_final > 1e-4
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(setup["model"]), exp / expected[0])
    assert sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n) > 0


@pytest.fixture(scope="module")
def sources(llms_bin, setup, tmp_path_factory):
    """A LoRA and a full fine-tuning experiment of 4 steps each (the LoRA one also with its epoch folder), and a
    run that validates the backbone alone before its first step."""
    out = tmp_path_factory.mktemp("sources")
    _train(llms_bin, setup, out, "lora", "training.evaluation_epochs=0.5", "training.save_checkpoint=each_evaluation_epoch",
           max_steps=4)
    _train(llms_bin, setup, out, "full", "training.lora=false", "training.learning_rate=0.001",
           "training.evaluation_epochs=0.5", max_steps=4)
    _train(llms_bin, setup, out, "backbone", "training.evaluate_before_training=true", max_steps=1)
    return out


@pytest.mark.parametrize("source,folder,lora", [
    ("lora", "", True), ("lora", "checkpoint", True), ("lora", "epoch_0_step_7", True),
    ("full", "", False), ("lora", "", False), ("full", "", True)])
def test_pretrained_weights_start_from_another_experiment(llms_bin, setup, sources, tmp_path, source, folder, lora):
    weights = sources / source / folder if folder else sources / source
    _train(llms_bin, setup, tmp_path, "cont", f"training.lora={str(lora).lower()}", "training.evaluate_before_training=true",
           f"architecture.pretrained_weights={weights}", max_steps=1)
    start = _validation(tmp_path / "cont")[0]
    assert start["step"] == 0
    source_end = _validation(sources / source)[-1]["loss"]
    other_end = _validation(sources / ("full" if source == "lora" else "lora"))[-1]["loss"]
    backbone = _validation(sources / "backbone")[0]["loss"]
    print(f"{source}/{folder} -> {'LoRA' if lora else 'full'}: validation loss before training {start['loss']:.6f}, "
          f"source's last {source_end:.6f} (other source {other_end:.6f}, backbone alone {backbone:.6f})")
    assert start["loss"] == pytest.approx(source_end, abs=2e-5)
    # The tolerance separates the candidates: not the other source's weights, not the backbone's alone.
    assert abs(start["loss"] - other_end) > 1e-3 and abs(start["loss"] - backbone) > 1e-3
    assert "pretrained weights:" in (tmp_path / "cont" / "logs.txt").read_text()


def _other_backbone(setup):
    """The tiny model's tokenizer with a narrower network (hidden size 32)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    other = setup["root"] / "narrow"
    if not other.exists():
        shutil.copytree(setup["model"], other)
        cfg = LlamaConfig.from_pretrained(setup["model"])
        cfg.hidden_size, cfg.intermediate_size = 32, 64
        LlamaForCausalLM(cfg).save_pretrained(other)
    return other


@pytest.mark.parametrize("case", ["missing", "file", "empty", "outside", "lora_r", "targets", "shapes",
                                  "no_adapter_config"])
def test_pretrained_weights_errors(llms_bin, setup, sources, tmp_path, case):
    sets, backbone, env = [], None, None
    if case == "missing":
        weights, message = tmp_path / "nope", "does not exist"
    elif case == "file":
        weights, message = sources / "lora" / "adapter_model.safetensors", "is a file"
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        weights, message = tmp_path / "empty", "holds no weights of ours"
    elif case == "outside":  # a run started by the studio reads only its allowed folders
        (tmp_path / "allowed").mkdir()
        env = {**os.environ, "LLMSTUDIO_CONFINE_ROOTS": str(tmp_path / "allowed")}
        weights, message = sources / "lora", "outside the folders this run may read"
    elif case == "lora_r":
        weights, message, sets = sources / "lora", "does lora_r match?", ["training.lora_r=4"]
    elif case == "targets":
        weights, message, sets = sources / "lora", "no adapter for", ["training.lora_target_modules=q_proj"]
    elif case == "shapes":
        weights, message, sets, backbone = sources / "full", "the model (llm_backbone) expects", ["training.lora=false"], \
            _other_backbone(setup)
    else:
        weights, message, sets = sources / "lora" / "checkpoint", "without adapter_config.json", ["training.lora=false"]
    proc = _train(llms_bin, setup, tmp_path, "bad", f"architecture.pretrained_weights={weights}", *sets,
                  backbone=backbone, max_steps=1, check=False, env=env)
    print(f"{case}: {[l for l in proc.stderr.splitlines() if 'pretrained_weights' in l][:1]}")
    assert proc.returncode != 0 and message in proc.stderr and "architecture.pretrained_weights" in proc.stderr, proc.stderr
    status = tmp_path / "bad" / "status.json"
    if case in ("missing", "file", "empty", "outside"):  # found before the experiment folder is made
        assert not status.exists()
    else:
        assert json.loads(status.read_text())["status"] == "failed"
