"""`llmstudio train` on CUDA with mixed precision (skipped without a CUDA device): LoRA and full fine-tuning of a
small Llama in bf16 autocast, with and without gradient checkpointing, and float16 with the loss scaler; packing.
Prints tokens/s and peak device memory per run (gradient checkpointing must lower the peak).
Run on the GPU machine: GPU_EXTRA_TESTS=tests/parity/test_train_features_cuda.py bash scripts/gpu-check.sh"""
import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from conftest import REPO, run_cli
from tiny_tokenized_model import make_tokenized_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # The example tokenizer on a wider, deeper random Llama, so that activations dominate memory.
    d = make_tokenized_model(tmp_path_factory.mktemp("m") / "cuda")
    cfg = LlamaConfig.from_pretrained(d)
    cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers = 512, 1536, 8
    cfg.num_attention_heads, cfg.num_key_value_heads = 8, 4
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(d)
    return d


def _run(llms_bin, model_dir, out, name, *sets):
    base = ["training.epochs=3", "training.batch_size=8", "training.learning_rate=0.001", "tokenizer.max_length=256",
            "environment.seed=1", "training.evaluation_epochs=3", f"llm_backbone={model_dir}",
            f"output_directory={out}", f"experiment_name={name}"]
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cuda", "--max-steps", 30]
    for s in [*base, *sets]:
        args += ["--set", s]
    run_cli(llms_bin, *args, cwd=REPO)
    metrics = [json.loads(l) for l in (out / name / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m["type"] == "train"]
    summary = [m for m in metrics if m["type"] == "summary"][-1]
    assert all(m["loss"] == m["loss"] for m in train), "NaN loss"
    assert train[-1]["loss"] < train[0]["loss"]
    print(f"{name}: loss {train[0]['loss']:.4f} -> {train[-1]['loss']:.4f}, {train[-1]['tokens_per_s']:.0f} tok/s, "
          f"peak {summary['peak_device_memory_gib']:.3f} GiB")
    return summary["peak_device_memory_gib"], (out / name / "logs.txt").read_text()


@pytest.mark.parametrize("lora", [True, False])
def test_bf16_mixed_precision_and_checkpointing(llms_bin, model_dir, tmp_path, lora):
    kind = "lora" if lora else "full"
    sets = [f"training.lora={str(lora).lower()}", "environment.mixed_precision=true",
            "environment.mixed_precision_dtype=bfloat16"]
    plain, log = _run(llms_bin, model_dir, tmp_path, f"{kind}-bf16", *sets, "architecture.gradient_checkpointing=false")
    assert "mixed precision bfloat16" in log
    ckpt, _ = _run(llms_bin, model_dir, tmp_path, f"{kind}-bf16-ckpt", *sets, "architecture.gradient_checkpointing=true")
    print(f"{kind}: gradient checkpointing peak {ckpt:.3f} GiB vs {plain:.3f} GiB")
    assert ckpt < plain
    _run(llms_bin, model_dir, tmp_path, f"{kind}-bf16-packed", *sets, "training.packing=true")


def test_fp16_loss_scaling(llms_bin, model_dir, tmp_path):
    _, log = _run(llms_bin, model_dir, tmp_path, "full-fp16", "training.lora=false", "environment.mixed_precision=true",
                  "environment.mixed_precision_dtype=float16", "training.learning_rate=0.0003")
    assert "dynamic loss scaling" in log
    state = json.loads((tmp_path / "full-fp16" / "checkpoint" / "trainer_state.json").read_text())
    print(f"fp16: loss scale after 30 steps {state['loss_scale']}")
