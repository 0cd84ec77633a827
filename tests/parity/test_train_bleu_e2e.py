"""`llmstudio train` with prediction.metric BLEU on CPU: a tiny model with a real tokenizer trains a few steps on
examples/data/train.csv; each validation generates answers for the validation samples. Checks that
validation_predictions.csv holds one row per validation sample with the training prompt format and the right
target, that the BLEU in metrics.jsonl equals sacrebleu.corpus_bleu on the CSV's predicted vs target columns (and
the per-row BLEU sacrebleu's sentence BLEU), and that save_checkpoint: best keeps the highest-BLEU evaluation."""
import csv
import json

import pytest
from sacrebleu import corpus_bleu
from sacrebleu.metrics import BLEU

from conftest import REPO, run_cli
from tiny_tokenized_model import make_tokenized_model

REL_TOL = 1e-9
SETS = ["training.epochs=2", "training.batch_size=4", "training.learning_rate=0.003", "training.lora_dropout=0.0",
        "training.evaluate_before_training=true", "tokenizer.max_length=64",
        "environment.seed=3", "prediction.metric=BLEU", "prediction.max_length_inference=12",
        "prediction.min_length_inference=0", "prediction.batch_size_inference=5"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tokenized_model(tmp_path_factory.mktemp("m") / "tiny")


def _train(llms_bin, model_dir, out, name, *sets, steps):
    args = ["train", "-c", REPO / "examples" / "cfg.yaml", "--device", "cpu", "--max-steps", steps]
    for s in [*SETS, f"llm_backbone={model_dir}", f"output_directory={out}", f"experiment_name={name}", *sets]:
        args += ["--set", s]
    run_cli(llms_bin, *args, cwd=REPO)
    exp = out / name
    metrics = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    with open(exp / "validation_predictions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return exp, [m for m in metrics if m["type"] == "validation"], rows


def _rel(a, b):
    return 0.0 if a == b else abs(a - b) / max(abs(b), 1e-300)


def _check_scores(rows, logged_bleu):
    """The logged corpus BLEU and the per-row BLEU against sacrebleu on the CSV's text; returns the largest diff."""
    hyps = [r["predicted_text"] for r in rows]
    refs = [r["target_text"] for r in rows]
    ref = corpus_bleu(hyps, [refs]).score
    worst = _rel(logged_bleu, ref)
    assert worst <= REL_TOL, f"logged BLEU {logged_bleu!r} vs sacrebleu {ref!r} on validation_predictions.csv"
    sent = BLEU(effective_order=True)
    for r in rows:
        s = sent.sentence_score(r["predicted_text"], [r["target_text"]]).score
        worst = max(worst, _rel(float(r["bleu"]), s))
        assert _rel(float(r["bleu"]), s) <= REL_TOL, (r, s)
    return worst, ref


def test_bleu_validation_predictions(llms_bin, model_dir, tmp_path):
    # Full fine-tuning learns enough in 40 steps to write words of the answers (LoRA: the test below).
    exp, vals, rows = _train(llms_bin, model_dir, tmp_path, "bleu", "training.lora=false",
                             "training.evaluation_epochs=0.25", steps=40)
    # Validations at step 0 (evaluate_before_training) and every quarter epoch; each logs BLEU next to the loss.
    assert vals[0]["step"] == 0 and len(vals) >= 4
    assert all("bleu" in v and "perplexity" in v for v in vals)
    # One row per validation sample, prompt formatted as in training (H2O markers, eos after prompt and answer,
    # earlier rounds of the conversation first), the target being that row's answer.
    n_val = int(next(line for line in (exp / "logs.txt").read_text().splitlines() if line.startswith("data: "))
                .split(" train samples, ")[1].split(" validation samples")[0])
    assert len(rows) == n_val > 0
    data = list(csv.DictReader(open(REPO / "examples" / "data" / "train.csv", encoding="utf-8")))
    by_id = {d["id"]: d for d in data}
    expected = {}  # H2O's layout of each row's conversation chain (parent_id), without the last answer
    for d in data:
        chain = [d]
        while chain[0]["parent_id"]:
            chain.insert(0, by_id[chain[0]["parent_id"]])
        text = "".join(f"<|prompt|>{c['instruction']}<|endoftext|><|answer|>{c['output']}<|endoftext|>" for c in chain[:-1])
        expected[text + f"<|prompt|>{d['instruction']}<|endoftext|><|answer|>"] = d["output"]
    for r in rows:
        assert r["prompt_text"] in expected, r["prompt_text"]
        assert r["target_text"] == expected[r["prompt_text"]]
        assert r["finish_reason"] in {"eos", "length", "stop", "time"}
        assert r["predicted_text"] == r["predicted_text"].strip()
        assert "<|prompt|>" not in r["predicted_text"] and "<|answer|>" not in r["predicted_text"]
    assert len({r["prompt_text"] for r in rows}) == len(rows)
    # save_checkpoint last: the CSV is the last evaluation's; its BLEU is sacrebleu's on the CSV.
    worst, score = _check_scores(rows, vals[-1]["bleu"])
    print(f"BLEU by step: {[(v['step'], round(v['bleu'], 3)) for v in vals]}; last {score:.4f}, "
          f"largest relative diff vs sacrebleu {worst:.3g}")
    print("sample predictions:", [(r["target_text"], r["predicted_text"]) for r in rows[:3]])
    # Training on the task makes the answers overlap the targets more than the random model's.
    assert vals[-1]["bleu"] > vals[0]["bleu"]
    assert sum(r["predicted_text"] != "" for r in rows) > len(rows) // 2


def test_save_best_uses_bleu(llms_bin, model_dir, tmp_path):
    exp, vals, rows = _train(llms_bin, model_dir, tmp_path, "best", "training.save_checkpoint=best",
                             "training.evaluation_epochs=0.1", steps=24)
    trained = [v for v in vals if v["step"] > 0]
    best = max(trained, key=lambda v: v["bleu"])  # first of the highest (a tie does not improve)
    state = json.loads((exp / "checkpoint" / "trainer_state.json").read_text())
    assert state["best_metric"] == pytest.approx(best["bleu"], rel=1e-12)
    # The CSV was rewritten at step 0 (before training) and whenever BLEU rose, not when the loss fell.
    written = [int(line.split("validation predictions of step ")[1].split()[0])
               for line in (exp / "logs.txt").read_text().splitlines() if "validation predictions of step " in line]
    rises, top = [], -1.0
    for v in trained:
        if v["bleu"] > top:
            rises.append(v["step"])
            top = v["bleu"]
    assert written == [0, *rises], (written, rises)
    worst, score = _check_scores(rows, best["bleu"])
    print(f"BLEU by step: {[(v['step'], round(v['bleu'], 3)) for v in vals]}; best at step {best['step']} "
          f"({score:.4f}), largest relative diff {worst:.3g}")
    # The final adapter is the best evaluation's weights (the checkpoint's), not the last step's, as in H2O.
    from safetensors.torch import load_file
    ckpt = load_file(str(exp / "checkpoint" / "model.safetensors"))
    assert state["step"] == best["step"], (state["step"], best["step"])
    adapter = load_file(str(exp / "adapter_model.safetensors"))
    assert adapter, "no adapter tensors"
    for name, t in adapter.items():
        diff = (ckpt[name].float() - t.float()).abs().max().item()
        assert diff == 0, f"{name}: final adapter differs from the best checkpoint by {diff}"
