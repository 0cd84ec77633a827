"""An experiment folder as a model: `generate -e <experiment>` / `chat -e` / `export -e` use the experiment's
adapter, its prompt format (H2O markers from its cfg.yaml) and its prediction settings, and stop on H2O's stop
words; checked token for token against transformers + PEFT greedy generation on the same adapter."""
import json

import pytest
import torch
from tokenizers import Tokenizer

from conftest import REPO, run_cli
from tiny_tokenized_model import make_tokenized_model

PROMPTS = ["What is the capital of France?", "Name a colour."]
MARKERS = ["<|system|>", "<|prompt|>", "<|answer|>"]


@pytest.fixture(scope="module")
def experiment(llms_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    model_dir = make_tokenized_model(root / "tiny")
    sets = ["training.epochs=1", "training.batch_size=4", "training.learning_rate=0.01", "tokenizer.max_length=64",
            "environment.seed=5", "prediction.max_length_inference=12", "prediction.min_length_inference=2",
            "prediction.stop_tokens=ab,zz", f"llm_backbone={model_dir}", f"output_directory={root}",
            "experiment_name=run"]
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu", "--max-steps", 4]
    for s in sets:
        args += ["--set", s]
    run_cli(llms_bin, *args, cwd=REPO)
    return model_dir, root / "run"


def _reference(model_dir, exp, prompt_ids, max_new, extra_stops, min_new=2):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    tok = Tokenizer.from_file(str(exp / "tokenizer.json"))
    eos = [tok.token_to_id("<|endoftext|>")]
    stops = extra_stops + MARKERS
    # H2O's stopping criterion: stop words that are one token end the sequence like EOS.
    eos += [ids[0] for ids in (tok.encode(s, add_special_tokens=False).ids for s in stops) if len(ids) == 1]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), exp).eval()
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                             max_new_tokens=max_new, min_new_tokens=min_new, do_sample=False, eos_token_id=eos,
                             pad_token_id=eos[0])
    new = out[0, len(prompt_ids):].tolist()
    text = tok.decode(new, skip_special_tokens=True)
    cut = min([text.find(s) for s in stops if s in text], default=len(text))  # H2O's clean_output
    return new, text[:cut].strip() if cut < len(text) else text, tok


def test_generate_from_experiment_matches_peft(llms_bin, experiment):
    model_dir, exp = experiment
    for prompt in PROMPTS:
        r = json.loads(run_cli(llms_bin, "generate", "-e", exp, "-p", prompt, "--json", "--device", "cpu").stdout)
        tok = Tokenizer.from_file(str(exp / "tokenizer.json"))
        # H2O's layout: <|prompt|>text<eos><|answer|>
        assert tok.decode(r["prompt_ids"], skip_special_tokens=False) == f"<|prompt|>{prompt}<|endoftext|><|answer|>"
        ref_ids, ref_text, _ = _reference(model_dir, exp, r["prompt_ids"], 12, ["ab", "zz"])
        n = len(r["token_ids"])
        print(f"prompt {prompt!r}: ours {r['token_ids']} ({r['finish_reason']}), PEFT {ref_ids}")
        assert len(ref_ids) <= 12 and n <= 12  # prediction.max_length_inference from the experiment
        assert r["token_ids"] == ref_ids[:n]
        if r["finish_reason"] != "stop":  # a text stop string may end ours a token or more before PEFT's
            assert r["token_ids"] == ref_ids
        assert r["text"].strip() == ref_text.strip()


def test_flags_override_experiment_settings(llms_bin, experiment):
    _, exp = experiment
    r = json.loads(run_cli(llms_bin, "generate", "-e", exp, "-p", PROMPTS[0], "--json", "--device", "cpu",
                           "--max-new-tokens", 3, "--prompt-format", "raw").stdout)
    assert len(r["token_ids"]) <= 3
    tok = Tokenizer.from_file(str(exp / "tokenizer.json"))
    assert tok.decode(r["prompt_ids"], skip_special_tokens=False) == PROMPTS[0]


def test_export_from_experiment_matches_peft_logits(llms_bin, experiment, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    model_dir, exp = experiment
    out = tmp_path / "merged"
    run_cli(llms_bin, "export", "-e", exp, "-o", out, "--dtype", "float32")
    ids = torch.tensor([[5, 17, 42, 9, 3, 77]])
    with torch.no_grad():
        ours = AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits
        ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), exp).eval()(ids).logits
    diff = (ours - ref).abs().max().item()
    print(f"exported merged experiment vs PEFT: max abs logit diff {diff:.2e}")
    assert diff <= 1e-4


def test_unfinished_experiment_is_a_clear_error(llms_bin, experiment, tmp_path):
    _, exp = experiment
    broken = tmp_path / "running"
    broken.mkdir()
    (broken / "cfg.yaml").write_text((exp / "cfg.yaml").read_text())
    (broken / "status.json").write_text(json.dumps({"status": "running", "step": 1, "total_steps": 9}))
    r = run_cli(llms_bin, "generate", "-e", broken, "-p", "hi", check=False)
    assert r.returncode != 0
    assert "no final model yet (status: running)" in r.stderr and "--resume" in r.stderr, r.stderr


def test_experiment_stop_tokens_end_generation_like_h2o(llms_bin, experiment, tmp_path):
    """With min_length_inference 0 and stop_tokens set to a word the model writes, generation ends on the first
    stop word's token id (the word, or one of H2O's markers, whichever the model writes first) and the text is cut
    there, as H2O's stopping criterion and clean_output do; ours must give PEFT's tokens and text."""
    import shutil
    model_dir, exp = experiment
    tok = Tokenizer.from_file(str(exp / "tokenizer.json"))
    candidates = [PROMPTS[0], "Tell me a story about a cat", "List three fruits", "Who wrote Hamlet?", "Hello there"]
    for prompt in candidates:  # a prompt whose first generated token is a whole, printable word
        first = json.loads(run_cli(llms_bin, "generate", "-e", exp, "-p", prompt, "--json", "--device", "cpu").stdout)
        word = tok.decode([first["token_ids"][0]])
        if word.strip().isalnum() and tok.encode(word, add_special_tokens=False).ids == first["token_ids"][:1]:
            break
    else:
        pytest.skip("the tiny model writes no whole-word token first for any candidate prompt")
    copy = tmp_path / "exp"
    shutil.copytree(exp, copy)
    cfg = (copy / "cfg.yaml").read_text()
    assert "stop_tokens: ab,zz" in cfg and "min_length_inference: 2" in cfg
    cfg = cfg.replace("stop_tokens: ab,zz", f"stop_tokens: {json.dumps(word)}")
    (copy / "cfg.yaml").write_text(cfg.replace("min_length_inference: 2", "min_length_inference: 0"))
    r = json.loads(run_cli(llms_bin, "generate", "-e", copy, "-p", prompt, "--json", "--device", "cpu").stdout)
    ref_ids, ref_text, _ = _reference(model_dir, copy, r["prompt_ids"], 12, [word], min_new=0)
    print(f"stop word {word!r}: ours {r['token_ids']} ({r['finish_reason']}), PEFT {ref_ids}")
    assert r["token_ids"] == ref_ids
    assert len(ref_ids) < 12 and r["finish_reason"] == "eos"  # stopped by the stop word's token id
    assert r["text"].strip() == ref_text.strip()
