"""Text prompts in `llmstudio generate` against transformers (fp32, CPU, greedy) on a tiny model with a real
byte-level BPE tokenizer: chat-template prompt ids equal apply_chat_template's (system message included) and
the continuation equals generate(); --raw and the no-template default feed the text as is; --prompt-format h2o
builds H2O's <|prompt|>...</s><|answer|> ids; --stop cuts the text at the stop string; batch prediction
(--input CSV/JSONL, left-padded batches) gives every row its unbatched greedy continuation."""
import csv
import json

import pytest

from conftest import run_cli
from tiny_chat_model import greedy_ids, make_chat_model

NEW = 16
BASE = ["--device", "cpu", "--dtype", "float32", "--max-new-tokens", str(NEW), "--json"]


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("prompting") / "model"
    model, hf_tok = make_chat_model(d)
    return d, model, hf_tok


def _gen(llms_bin, d, *args):
    out = run_cli(llms_bin, "generate", "-m", d, *BASE, *args).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _template_ids(hf_tok, user, system=""):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    text = hf_tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return hf_tok.encode(text, add_special_tokens=False)


def test_chat_template_prompt_and_continuation(llms_bin, chat_model):
    d, model, hf_tok = chat_model
    for system in ("", "you answer in words"):
        args = ["-p", "hello there"] + (["--system", system] if system else [])
        got = _gen(llms_bin, d, *args)[0]
        ids = _template_ids(hf_tok, "hello there", system)
        assert got["prompt_ids"] == ids
        expected = greedy_ids(model, ids, NEW)
        assert got["token_ids"] == expected
        assert got["text"] == hf_tok.decode(expected, skip_special_tokens=True)
        print(f"chat template (system={system!r}): {len(ids)} prompt ids, reply {got['text']!r} identical")


def test_raw_and_h2o_formats(llms_bin, chat_model, tmp_path):
    d, model, hf_tok = chat_model
    got = _gen(llms_bin, d, "-p", "the quick brown", "--raw")[0]
    assert got["prompt_ids"] == hf_tok.encode("the quick brown")
    assert got["token_ids"] == greedy_ids(model, got["prompt_ids"], NEW)
    # H2O's parse_prompt: text_prompt_start + prompt + eos (add_eos_token_to_prompt) + text_answer_separator.
    got = _gen(llms_bin, d, "-p", "hello there", "--prompt-format", "h2o")[0]
    assert got["prompt_ids"] == hf_tok.encode("<|prompt|>hello there</s><|answer|>", add_special_tokens=False)
    got = _gen(llms_bin, d, "-p", "hi", "--prompt-format", "h2o", "--system", "be brief")[0]
    assert got["prompt_ids"] == hf_tok.encode("<|system|>be brief</s><|prompt|>hi</s><|answer|>", add_special_tokens=False)
    # Without a chat template, the default is raw; asking for the template is an error naming the file.
    plain = tmp_path / "plain"
    make_chat_model(plain, with_template=False)
    assert _gen(llms_bin, plain, "-p", "the quick brown")[0]["prompt_ids"] == hf_tok.encode("the quick brown")
    bad = run_cli(llms_bin, "generate", "-m", plain, "-p", "x", "--prompt-format", "chat-template", check=False)
    assert bad.returncode != 0 and "tokenizer_config.json: no chat_template" in bad.stderr


def test_stop_strings_cut_the_text(llms_bin, chat_model):
    d, model, hf_tok = chat_model
    ids = _template_ids(hf_tok, "tell me a story")
    full_ids = greedy_ids(model, ids, NEW)
    full = hf_tok.decode(full_ids, skip_special_tokens=True)
    # A 3-character stop string whose first occurrence is in the middle of the reply.
    stop = next(full[k:k + 3] for k in range(len(full) // 2, len(full) - 3) if full.index(full[k:k + 3]) == k)
    got = _gen(llms_bin, d, "-p", "tell me a story", "--stop", stop, "--stop", "zzzz-never")[0]
    assert got["finish_reason"] == "stop"
    assert got["text"] == full[:full.index(stop)], (got["text"], full, stop)
    assert got["token_ids"] == full_ids[:len(got["token_ids"])] and len(got["token_ids"]) < NEW
    print(f"stop {stop!r}: {full!r} -> {got['text']!r}")


def test_batch_prediction_files(llms_bin, chat_model, tmp_path):
    d, model, hf_tok = chat_model
    rows = [("hello there", ""), ("tell me, a \"story\"", "you answer"), ("the lazy dog", ""),
            ("how are you", "be nice")]
    src = tmp_path / "prompts.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "prompt", "system"])
        for i, (p, s) in enumerate(rows):
            w.writerow([i, p, s])
    out = tmp_path / "out.jsonl"
    run_cli(llms_bin, "generate", "-m", d, "--device", "cpu", "--dtype", "float32", "--max-new-tokens", NEW,
            "--input", src, "--output", out, "--batch-size", 3)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["prompt"] for g in got] == [p for p, _ in rows]
    for g, (p, s) in zip(got, rows):
        ids = _template_ids(hf_tok, p, s)
        assert g["prompt_ids"] == ids
        assert g["token_ids"] == greedy_ids(model, ids, NEW), f"row {p!r} differs from its unbatched continuation"
    # JSONL in, CSV out: same texts.
    src2 = tmp_path / "prompts.jsonl"
    src2.write_text("".join(json.dumps({"prompt": p, "system": s}) + "\n" for p, s in rows))
    out2 = tmp_path / "out.csv"
    run_cli(llms_bin, "generate", "-m", d, "--device", "cpu", "--dtype", "float32", "--max-new-tokens", NEW,
            "--input", src2, "--output", out2, "--batch-size", 4)
    with out2.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["text"] for r in table] == [g["text"] for g in got]
    assert [r["token_ids"] for r in table] == [" ".join(map(str, g["token_ids"])) for g in got]
    bad = tmp_path / "bad.csv"
    bad.write_text("question\nhi\n")
    proc = run_cli(llms_bin, "generate", "-m", d, "--input", bad, "--output", tmp_path / "x.jsonl", check=False)
    assert proc.returncode != 0 and "prompt" in proc.stderr and "bad.csv" in proc.stderr
