"""LoRA adapters at inference: transformers + PEFT generate() on a PEFT-wrapped tiny model (greedy, 64 new
tokens, fp32 CPU) gives exactly the ids of `llmstudio generate --adapter` (adapter applied unmerged) and of
`--adapter --merge` (merged in place before generating), alone and in a left-padded batch."""
import json

import pytest
import torch

from conftest import run_cli
from tiny_models import lora_model, make_model

NEW = 64
EOS = 100000  # never produced: every row runs the full 64 tokens
CASES = {"llama_gqa_llama3rope_tied": ["q_proj", "v_proj", "down_proj"],
         "qwen2_gqa_bias_tied": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def _hf(model, prompts):
    width = max(map(len, prompts))
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW, do_sample=False, num_beams=1,
                             eos_token_id=EOS, pad_token_id=0)
    return out[:, width:].tolist()


def _ours(llms_bin, model_dir, tmp_path, prompts, *extra):
    f = tmp_path / "prompts.json"
    f.write_text(json.dumps({"prompts": prompts}))
    out = run_cli(llms_bin, "generate", "-m", model_dir, "--input-ids", f, "--json", "--device", "cpu", "--dtype",
                  "float32", "--max-new-tokens", NEW, "--eos-id", EOS, *extra).stdout
    return [json.loads(line)["token_ids"] for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("variant", sorted(CASES))
def test_adapter_generation_matches_peft(llms_bin, tmp_path, variant):
    model_dir, adapter_dir = tmp_path / "model", tmp_path / "adapter"
    base = make_model(variant, model_dir)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(3, base.config.vocab_size, (n,), generator=g).tolist() for n in (7, 12, 3)]
    base_out = _hf(base, prompts)

    peft_model = lora_model(base, CASES[variant], b_scale=0.3, seed=9)
    peft_model.eval()
    peft_model.save_pretrained(adapter_dir)
    for batch in ([prompts[0]], prompts):
        expected = _hf(peft_model, batch)
        assert expected != base_out[:len(batch)], "the adapter must change the greedy output"
        for extra in (["--adapter", adapter_dir], ["--adapter", adapter_dir, "--merge"]):
            got = _ours(llms_bin, model_dir, tmp_path, batch, *extra)
            for i, (e, o) in enumerate(zip(expected, got)):
                first = next((k for k, (a, b) in enumerate(zip(e, o)) if a != b), None)
                assert o == e, f"{variant} {extra[2:]} batch {len(batch)} row {i}: first difference at {first}"
            print(f"{variant} {' '.join(map(str, extra[2:])) or 'unmerged'}: batch of {len(batch)}: "
                  f"identical {[len(r) for r in got]} tokens")


def test_merge_without_adapter_is_an_error(llms_bin, tmp_path):
    make_model("qwen2_gqa_bias_tied", tmp_path / "model")
    proc = run_cli(llms_bin, "generate", "-m", tmp_path / "model", "--ids", "1 2", "--merge", check=False)
    assert proc.returncode != 0 and "--merge needs --adapter" in proc.stderr
