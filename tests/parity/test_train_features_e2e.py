"""`llmstudio train` with the training features on CPU: bf16 mixed precision (a bfloat16 backbone makes it apply
on CPU) with gradient checkpointing, packing and a differential learning rate; float16 mixed precision with
the dynamic loss scaler in full fine-tuning (scaler state in the checkpoint); the packing/loss config check."""
import json

import pytest
from safetensors import safe_open

from conftest import REPO, run_cli
from tiny_tokenized_model import make_tokenized_model

BASE_SETS = ["training.epochs=1", "training.batch_size=2", "training.learning_rate=0.003", "training.lora_dropout=0.1",
             "training.evaluation_epochs=1", "tokenizer.max_length=64", "environment.seed=3"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tokenized_model(tmp_path_factory.mktemp("m") / "tiny")


def _train(llms_bin, model_dir, out, name, *sets, check=True):
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu", "--max-steps", 8]
    for s in [*BASE_SETS, f"llm_backbone={model_dir}", f"output_directory={out}", f"experiment_name={name}", *sets]:
        args += ["--set", s]
    return run_cli(llms_bin, *args, check=check, cwd=REPO)


def _train_losses(exp):
    return [m["loss"] for m in map(json.loads, (exp / "metrics.jsonl").read_text().splitlines()) if m["type"] == "train"]


def test_bf16_checkpointing_packing_differential_lr(llms_bin, model_dir, tmp_path):
    proc = _train(llms_bin, model_dir, tmp_path, "bf16", "architecture.backbone_dtype=bfloat16",
                  "environment.mixed_precision=true", "environment.mixed_precision_dtype=bfloat16",
                  "architecture.gradient_checkpointing=true", "training.packing=true",
                  "training.differential_learning_rate_layers=[lora_B]", "training.differential_learning_rate=0.001")
    exp = tmp_path / "bf16"
    log = (exp / "logs.txt").read_text()
    assert "mixed precision bfloat16" in log, log
    assert "packing:" in log and "differential learning rate" in log, log
    assert json.loads((exp / "status.json").read_text())["status"] == "finished"
    losses = _train_losses(exp)
    print(f"bf16 + checkpointing + packing + differential lr: loss {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} steps")
    assert all(l == l for l in losses)  # no NaN
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    # The adapters trained in float32 (master weights) on the bfloat16 base.
    with safe_open(exp / "adapter_model.safetensors", "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}
    assert dtypes == {"torch.float32"}, dtypes


def test_fp16_loss_scaling_full_finetuning(llms_bin, model_dir, tmp_path):
    _train(llms_bin, model_dir, tmp_path, "fp16", "training.lora=false", "architecture.backbone_dtype=float16",
           "environment.mixed_precision=true", "environment.mixed_precision_dtype=float16",
           "training.learning_rate=0.0005")
    exp = tmp_path / "fp16"
    assert "dynamic loss scaling" in (exp / "logs.txt").read_text()
    state = json.loads((exp / "checkpoint" / "trainer_state.json").read_text())
    losses = _train_losses(exp)
    print(f"fp16 full fine-tuning: loss {losses[0]:.4f} -> {losses[-1]:.4f}; loss scale {state['loss_scale']}")
    assert state["loss_scale"] > 0 and "loss_scale_good_steps" in state
    assert all(l == l for l in losses) and losses[-1] < losses[0]
    with safe_open(exp / "model.safetensors", "pt") as f:  # full fine-tuning saves the float32 master weights
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float32"}


def test_packing_needs_token_averaged_loss(llms_bin, model_dir, tmp_path):
    proc = _train(llms_bin, model_dir, tmp_path, "bad", "training.packing=true",
                  "training.loss_function=SampleAveragedCrossEntropy", check=False)
    assert proc.returncode != 0 and "training.packing" in proc.stderr, proc.stderr
