"""The layer schema (src/llmstudio/model/layer_schema.h) against real checkpoints: for every tiny transformers model
(every supported architecture, with and without biases), `llmstudio info` finds every tensor the schema expects
(else it fails naming the missing one), no tensor the schema does not know, and the schema's parameter count equals
the checkpoint's. Every supported architecture must have a row in tiny_models.VARIANTS. (That every trainable
tensor of the schema gets a gradient under gradient checkpointing: tests/unit/torch_layer_schema_test.cpp.)"""
import json
import re

import pytest

from conftest import run_cli
from tiny_models import VARIANTS, make_model


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_schema_tensors_equal_the_checkpoint_tensors(llms_bin, tmp_path, variant):
    model_dir = tmp_path / "m"
    ref = make_model(variant, model_dir)
    info = json.loads(run_cli(llms_bin, "info", model_dir, "--json", "--tensors").stdout)
    names = {t["name"] for t in info["tensors"]}
    assert names == set(ref.state_dict()) - ({"lm_head.weight"} if ref.config.tie_word_embeddings else set())
    assert info["unexpected_tensors"] == [], info["unexpected_tensors"]
    assert info["model_parameter_count"] == sum(p.numel() for p in ref.parameters())
    layer_leaves = {n.split(".", 3)[3] for n in names if n.startswith("model.layers.0.")}
    print(variant, len(layer_leaves), "layer tensors:", sorted(layer_leaves))


def test_every_supported_architecture_has_a_tiny_model(llms_bin, tmp_path):
    model_dir = tmp_path / "m"
    make_model("llama_gqa_llama3rope_tied", model_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["architectures"] = ["NoSuchForCausalLM"]
    (model_dir / "config.json").write_text(json.dumps(cfg))
    proc = run_cli(llms_bin, "info", model_dir, check=False)
    supported = re.search(r"supported: ([A-Za-z0-9, ]+)", proc.stderr)
    assert proc.returncode != 0 and supported, proc.stderr
    tested = {cls.__name__ for _, cls, _ in VARIANTS.values()}
    assert set(supported.group(1).split(", ")) == tested
