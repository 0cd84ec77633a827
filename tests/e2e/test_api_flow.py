"""The studio's whole flow against a real `llmstudio ui` process (issue 7 acceptance): upload a dataset (checked
against Python's csv module) -> create an experiment (config validated like `llmstudio train`) -> train a tiny
random Llama with a real BPE tokenizer on CPU (child `llmstudio train` process) -> live events and metrics ->
chat through /v1/chat/completions, streamed and not (greedy text equal to `llmstudio generate` with the same
adapter) -> export the adapter (tensors equal to the run's) and the merged model (logits equal to PEFT's within
1e-4) and download them as tar archives; compare and clone."""
import csv
import io
import json
import statistics
import tarfile

import pytest
import torch

from conftest import run_cli
from studio_proc import DATASET, TRAIN_CONFIG


@pytest.fixture(scope="module")
def csv_rows():
    with open(DATASET, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def dataset(studio):
    r = studio.upload(name="examples")
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def trained(studio, dataset, models_root):
    r = studio.post("/api/experiments", json={"name": "tiny-lora", "dataset_id": dataset["id"],
                                              "llm_backbone": str(models_root / "tiny"), "config": TRAIN_CONFIG,
                                              "start": True})
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["status"] in ("queued", "running"), exp
    # Live events until the run ends.
    events = []
    with studio.get(f"/api/experiments/{exp['id']}/events", stream=True, timeout=600) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        event = None
        for line in resp.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    final = studio.get(f"/api/experiments/{exp['id']}").json()
    assert final["status"] == "finished", (final, studio.get(f"/api/experiments/{exp['id']}/logs").json()["text"])
    return final, events


def test_health_env_schema_models(studio, llms_bin, models_root):
    assert studio.get("/api/health").json()["ok"] is True
    env = studio.get("/api/env").json()
    cli = json.loads(run_cli(llms_bin, "env", "--json", "--device", "cpu").stdout)
    assert set(env) == set(cli)
    assert env["selected"]["device"] == cli["selected"]["device"] == "cpu"
    schema = studio.get("/api/config/schema").json()
    sections = {s["name"]: {k["key"]: k for k in s["keys"]} for s in schema["sections"]}
    # The defaults are the CLI's: `llmstudio config` resolves an empty config to the same values.
    lr = sections["training"]["learning_rate"]
    assert lr["type"] == "float" and lr["help"]
    assert sections["training"]["optimizer"]["type"] == "enum" and "AdamW" in sections["training"]["optimizer"]["choices"]
    assert sections["training"]["epochs"]["type"] == "int" and sections["training"]["lora"]["type"] == "bool"
    assert sections["dataset"]["train_dataframe"]["managed"] is True  # shown, set by the studio
    # Every key of the table (experiment/config_schema.cpp), with its help; the ignored ones with their reason.
    keys = [k for s in schema["sections"] for k in s["keys"]]
    assert len(keys) == len(set((s["name"], k["key"]) for s in schema["sections"] for k in s["keys"])) > 100
    assert all(k["help"] and k["status"] in ("implemented", "ignored", "refused") for k in keys)
    assert all(k["reason"] for k in keys if k["status"] != "implemented")
    assert sections["environment"]["use_deepspeed"]["status"] == "ignored"
    assert "AdamW8bit" not in sections["training"]["optimizer"]["choices"]  # refused values are not offered
    models = studio.get("/api/models").json()["models"]
    assert [m["path"] for m in models] == [str((models_root / "tiny").resolve())]
    assert models[0]["architecture"] == "LlamaForCausalLM"


def test_upload_preview_and_stats(studio, dataset, csv_rows):
    header, rows = csv_rows[0], csv_rows[1:]
    assert dataset["rows"] == len(rows) and dataset["format"] == "csv" and dataset["filename"] == "train.csv"
    assert [c["name"] for c in dataset["columns"]] == header
    types = {c["name"]: c["type"] for c in dataset["columns"]}
    assert types["id"] == "int" and types["instruction"] == "string"
    assert dataset["size_bytes"] == DATASET.stat().st_size
    assert any(d["id"] == dataset["id"] for d in studio.get("/api/datasets").json()["datasets"])
    page = studio.get(f"/api/datasets/{dataset['id']}/rows", params={"offset": 5, "limit": 7}).json()
    assert page["total"] == len(rows) and page["columns"] == header
    expect = [[c if c != "" else None for c in r] for r in rows[5:12]]
    assert page["rows"] == expect
    full = studio.get(f"/api/datasets/{dataset['id']}").json()
    col = header.index("instruction")
    lens = [len(r[col]) for r in rows if r[col] != ""]
    st = full["stats"]["instruction"]
    print("instruction lengths", st)
    assert (st["min_len"], st["max_len"]) == (min(lens), max(lens))
    assert abs(st["mean_len"] - statistics.mean(lens)) < 1e-9


def test_train_events_and_metrics(studio, trained):
    exp, events = trained
    metrics = studio.get(f"/api/experiments/{exp['id']}/metrics").json()["metrics"]
    train = [m for m in metrics if m["type"] == "train"]
    total = exp["progress"]["total_steps"]
    assert total > 0 and [m["step"] for m in train] == list(range(1, total + 1))
    assert all(m["loss"] == m["loss"] and m["loss"] > 0 for m in train)
    assert any(m["type"] == "validation" for m in metrics)
    assert exp["progress"]["step"] == total and exp["progress"]["loss"] == pytest.approx(train[-1]["loss"])
    # The event stream carried every metric line, the log, and the status through to "finished".
    assert [e for kind, e in events if kind == "metric"] == metrics
    statuses = [e["status"] for kind, e in events if kind == "status"]
    assert statuses[-1] == "finished" and "running" in statuses
    assert any(kind == "log" for kind, _ in events)


def test_logs_config_predictions(studio, trained):
    exp, _ = trained
    first = studio.get(f"/api/experiments/{exp['id']}/logs").json()
    assert "experiment" in first["text"] and first["next_offset"] == len(first["text"].encode())
    again = studio.get(f"/api/experiments/{exp['id']}/logs", params={"offset": first["next_offset"]}).json()
    assert again == {"text": "", "next_offset": first["next_offset"]}
    cfg = studio.get(f"/api/experiments/{exp['id']}/config").json()
    assert "learning_rate: 0.003" in cfg["yaml"]
    assert cfg["config"]["training"]["learning_rate"] == 0.003 and cfg["config"]["training"]["batch_size"] == 16
    assert cfg["config"]["dataset"]["prompt_column"] == ["instruction"]
    preds = studio.get(f"/api/experiments/{exp['id']}/predictions").json()
    assert set(preds) == {"columns", "rows"}


def test_chat_matches_cli_generate(studio, trained, llms_bin, models_root):
    exp, _ = trained
    assert exp["id"] in [m["id"] for m in studio.get("/v1/models").json()["data"]]
    question = "What is the capital of France?"
    body = {"model": exp["id"], "messages": [{"role": "user", "content": question}], "max_tokens": 12, "temperature": 0}
    r = studio.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    reply = r.json()
    text = reply["choices"][0]["message"]["content"]
    assert reply["object"] == "chat.completion" and reply["choices"][0]["finish_reason"] in ("stop", "length")
    assert 0 < reply["usage"]["completion_tokens"] <= 12
    # The same prompt through the CLI on the experiment folder (its training prompt format, prediction settings
    # and stop words; merged adapter; greedy).
    cli = run_cli(llms_bin, "generate", "-m", exp["dir"], "--merge", "-p", question, "--max-new-tokens", 12,
                  "--greedy", "--device", "cpu", "--json")
    cli_text = json.loads(cli.stdout.strip().splitlines()[-1])["text"]
    print("api:", repr(text), "cli:", repr(cli_text))
    assert text == cli_text
    # Streaming: OpenAI chunks whose deltas add up to the same text, then [DONE].
    chunks, done = [], False
    with studio.post("/v1/chat/completions", json={**body, "stream": True}, stream=True) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        for line in resp.iter_lines(decode_unicode=True):
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                break
            chunks.append(json.loads(line[6:]))
    assert done and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == text
    assert chunks[-1]["choices"][0]["finish_reason"] == reply["choices"][0]["finish_reason"]
    # Plain completions: the raw prompt continued.
    r = studio.post("/v1/completions", json={"model": exp["id"], "prompt": "The capital", "max_tokens": 5, "temperature": 0})
    assert r.status_code == 200 and r.json()["object"] == "text_completion", r.text


def _tar_members(studio, download):
    r = studio.get(download)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-tar", r.text[:300]
    assert int(r.headers["Content-Length"]) == len(r.content)
    tar = tarfile.open(fileobj=io.BytesIO(r.content))
    return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_export_adapter_and_merged(studio, trained, models_root, tmp_path):
    from safetensors.torch import load as load_st, load_file
    exp, _ = trained
    r = studio.post(f"/api/experiments/{exp['id']}/export", json={"mode": "adapter"})
    assert r.status_code == 201, r.text
    files = _tar_members(studio, r.json()["download"])
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(files)
    ours = load_st(files["adapter_model.safetensors"])
    run = load_file(f"{exp['dir']}/adapter_model.safetensors")
    assert ours.keys() == run.keys() and all(torch.equal(ours[k], run[k]) for k in run)

    r = studio.post(f"/api/experiments/{exp['id']}/export", json={"mode": "merged"})
    assert r.status_code == 201, r.text
    files = _tar_members(studio, r.json()["download"])
    assert "config.json" in files and any(n.endswith(".safetensors") for n in files)
    out = tmp_path / "merged"
    out.mkdir()
    for name, data in files.items():
        (out / name).write_bytes(data)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(models_root / "tiny"), exp["dir"]).eval()
    ids = torch.tensor([[1, 5, 9, 30, 2, 7]])
    with torch.no_grad():
        diff = (merged(ids).logits - peft(ids).logits).abs().max().item()
    print(f"merged export vs PEFT logits: max diff {diff:.2e}")
    assert diff < 1e-4


def test_compare_and_clone(studio, trained):
    exp, _ = trained
    clone = studio.post(f"/api/experiments/{exp['id']}/clone", json={"name": "copy"})
    assert clone.status_code == 201, clone.text
    c = clone.json()
    assert c["status"] == "created" and c["name"] == "copy" and c["id"] != exp["id"]
    cmp = studio.get("/api/compare", params={"ids": f"{exp['id']},{c['id']}"}).json()
    assert [e["id"] for e in cmp["experiments"]] == [exp["id"], c["id"]]
    assert cmp["config_diff"] == []  # same settings (names and folders are not settings)
    assert len(cmp["metrics"][exp["id"]]) > 0 and cmp["metrics"][c["id"]] == []
    other = studio.post("/api/experiments", json={"dataset_id": exp["dataset_id"], "llm_backbone": exp["llm_backbone"],
                                                  "config": {**TRAIN_CONFIG, "training": {**TRAIN_CONFIG["training"],
                                                                                         "learning_rate": 0.001}}}).json()
    cmp = studio.get("/api/compare", params={"ids": f"{exp['id']},{other['id']}"}).json()
    assert cmp["config_diff"] == [{"key": "training.learning_rate", "values": {exp["id"]: 0.003, other["id"]: 0.001}}]
    assert studio.delete(f"/api/experiments/{other['id']}").status_code == 204
    assert studio.get(f"/api/experiments/{other['id']}").status_code == 404


def test_serve_experiment_matches_studio(studio, trained, llms_bin):
    """`llmstudio serve -m <experiment dir>` offers the same /v1 answers as the studio."""
    import subprocess
    import time

    import requests

    from studio_proc import free_port
    exp, _ = trained
    port = free_port()
    proc = subprocess.Popen([str(llms_bin), "serve", "-m", exp["dir"], "--model-name", "tiny-ft", "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if requests.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.time() < deadline, "serve did not start"
            time.sleep(0.2)
        assert [m["id"] for m in requests.get(url + "/v1/models").json()["data"]] == ["tiny-ft"]
        body = {"messages": [{"role": "user", "content": "Which country has Paris as its capital?"}], "max_tokens": 10,
                "temperature": 0}
        served = requests.post(url + "/v1/chat/completions", json=body, timeout=120).json()
        ours = studio.post("/v1/chat/completions", json={**body, "model": exp["id"]}).json()
        assert served["choices"][0]["message"]["content"] == ours["choices"][0]["message"]["content"]
        r = requests.post(url + "/v1/chat/completions", json={**body, "model": "other"}, timeout=30)
        assert r.status_code == 404 and r.json()["error"]["code"] == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)
