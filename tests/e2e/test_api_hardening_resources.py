"""Issue 11, resources and files of a real `llmstudio ui` process: /v1 generation on one executor thread (20
alternating model switches keep RSS under 2x one model's; 40 concurrent chats get 503 + Retry-After beyond the
wait list, never another 5xx, while /api/health stays fast), symlinks out of an allowed model folder refused for
creation, training, /v1, export and the training child ($LLMSTUDIO_CONFINE_ROOTS), training children without
LLMSTUDIO_TOKEN, upper bounds on config values, experiment name length, datasets used by any experiment kept, and
files/folders created 0600/0700."""
import concurrent.futures
import io
import json
import os
import pathlib
import shutil
import stat
import tarfile
import threading
import time
import uuid

import pytest
import requests

from conftest import run_cli
from studio_proc import DATASET, TRAIN_CONFIG, Studio, error_of
from tiny_tokenized_model import make_tokenized_model

TOKEN = "hardening-" + uuid.uuid4().hex
SECRET = "OUTSIDE-SECRET-" + uuid.uuid4().hex

# A couple of optimizer steps on a 10% sample; short predictions (validation generates them).
QUICK = {**TRAIN_CONFIG,
         "dataset": {**TRAIN_CONFIG["dataset"], "data_sample": 0.1, "validation_size": 0.2},
         "training": {**TRAIN_CONFIG["training"], "batch_size": 8},
         "prediction": {"max_length_inference": 4, "min_length_inference": 1}}


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def train(studio, dataset_id, backbone, name, config=QUICK):
    r = studio.post("/api/experiments", json={"name": name, "dataset_id": dataset_id, "llm_backbone": str(backbone),
                                              "config": config, "start": True})
    assert r.status_code == 201, r.text
    exp = studio.wait_status(r.json()["id"], {"finished", "failed"}, timeout=300)
    assert exp["status"] == "finished", (exp, studio.get(f"/api/experiments/{exp['id']}/logs").json()["text"])
    return exp


def chat(client, model, max_tokens=2, url="", **kw):
    """A chat through a Studio (its session) or, with url, any requests-like client."""
    return client.post(url + "/v1/chat/completions", json={"model": model, "max_tokens": max_tokens, "temperature": 0,
                                                           "messages": [{"role": "user", "content": "Hello there"}]},
                       timeout=kw.pop("timeout", 120), **kw)


# ---- generation executor: memory across model switches, busy answers -------------------------------------------

def make_big_model(out, seed):
    """The tiny model's tokenizer with ~100 MB of float32 weights (8 layers of 512), so arena growth would show."""
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM
    import torch
    make_tokenized_model(out, seed=seed)
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=8, tie_word_embeddings=True, bos_token_id=None,
                      eos_token_id=eos, pad_token_id=eos)
    for f in out.glob("*.safetensors"):
        f.unlink()
    LlamaForCausalLM(cfg).save_pretrained(out)
    size = sum(f.stat().st_size for f in out.glob("*.safetensors")) / 2**20
    assert 80 < size < 130, size
    return out


@pytest.fixture(scope="module")
def big(llms_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("big-models")
    a, b = make_big_model(root / "a", 1), make_big_model(root / "b", 2)
    s = Studio(llms_bin, tmp_path_factory.mktemp("big-studio") / "data", allow=[root])
    ds = s.upload().json()
    exps = [train(s, ds["id"], a, "big-a")["id"], train(s, ds["id"], b, "big-b")["id"]]
    yield s, exps
    s.stop()


def test_model_switches_do_not_grow_memory(big):
    studio, (a, b) = big
    r = chat(studio, a)
    assert r.status_code == 200, r.text
    first = rss_mb(studio.proc.pid)
    t0 = time.time()
    for i in range(20):
        # A new connection each time, as separate clients would: any HTTP worker may take the request. (Loading
        # on those workers grew RSS from ~700 MB to ~2,000 MB over these 20 switches before the executor.)
        r = chat(requests, b if i % 2 == 0 else a, url=studio.url)
        assert r.status_code == 200, r.text
        assert r.json()["model"] == (b if i % 2 == 0 else a)
    after = rss_mb(studio.proc.pid)
    print(f"VmRSS after the first load {first:.0f} MB, after 20 switches {after:.0f} MB "
          f"({time.time() - t0:.1f} s for the switches)")
    assert after < 2 * first, (first, after)


def test_concurrent_chats_get_busy_answers_and_health_stays_fast(big):
    studio, (a, _) = big
    assert chat(studio, a).status_code == 200  # loaded
    stop = threading.Event()
    health = []

    t0 = time.time()

    def poll_health():
        while not stop.is_set() and len(health) < 500:
            t = time.time()
            r = requests.get(studio.url + "/api/health", timeout=10)
            health.append((r.status_code, time.time() - t, t - t0))
            time.sleep(0.05)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            # 40 clients, 10 ms apart (all overlap: a generation takes seconds), each keeping its connection open
            # (keep-alive) until the end: idle connections must not starve /api/health of HTTP workers.
            body = {"model": a, "max_tokens": 32, "temperature": 0, "messages": [{"role": "user", "content": "Hi"}]}
            clients = []

            def one(i):
                time.sleep(0.01 * i)
                client = requests.Session()
                clients.append(client)
                return client.post(studio.url + "/v1/chat/completions", json=body, timeout=300)

            results = list(pool.map(one, range(40)))
    finally:
        stop.set()
        poller.join()
        for client in clients:
            client.close()
    codes = [r.status_code for r in results]
    busy = [r for r in results if r.status_code == 503]
    slow = [(round(at, 2), round(d, 2)) for _, d, at in health if d > 0.3]
    print(f"health calls over 0.3 s (started at, took): {slow}")
    print(f"40 concurrent chats: {codes.count(200)} x 200, {len(busy)} x 503; /api/health {len(health)} calls, "
          f"slowest {max(d for _, d, _ in health):.3f} s")
    assert set(codes) <= {200, 503}, codes
    assert codes.count(200) >= 5 and len(busy) >= 10, codes
    for r in busy:
        assert int(r.headers["Retry-After"]) >= 1, r.headers
        assert "busy" in error_of(r, 503)
    assert health and all(code == 200 for code, _, _ in health)
    assert max(d for _, d, _ in health) < 1.0, slow
    assert chat(studio, a).status_code == 200  # the executor still serves


def test_stream_stops_generating_when_the_client_leaves(big):
    studio, (a, _) = big
    # The reference: this greedy generation runs its full 200 tokens (no EOS), taking `full` seconds.
    t = time.time()
    r = chat(studio, a, max_tokens=200)
    full = time.time() - t
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length", r.text
    body = {"model": a, "max_tokens": 200, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "Hello there"}]}
    with requests.post(studio.url + "/v1/chat/completions", json=body, stream=True, timeout=60) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        events = [json.loads(next(line for line in lines if line)[6:]) for _ in range(3)]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    t = time.time()
    r = chat(studio, a)  # waits for the executor: only as long as the abandoned stream keeps it
    after = time.time() - t
    print(f"200 tokens take {full:.1f} s; a chat after a stream abandoned at its 3rd event waited {after:.1f} s")
    assert r.status_code == 200 and after < full / 2, (full, after)


# ---- symlinks, token, bounds, names, datasets, file modes -------------------------------------------------------

@pytest.fixture(scope="module")
def env(llms_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("allowed")
    outside = tmp_path_factory.mktemp("outside")
    clean = make_tokenized_model(root / "clean")
    # Outside the allowed folder: a valid tokenizer.json carrying the secret, and a passwd-like "config.json".
    tok = json.loads((clean / "tokenizer.json").read_text())
    tok["x_secret"] = SECRET
    (outside / "tokenizer.json").write_text(json.dumps(tok))
    (outside / "passwd").write_text(f"{SECRET}:x:0:0:root:/root:/bin/bash\n")
    studio = Studio(llms_bin, tmp_path_factory.mktemp("studio") / "data", allow=[root], env={"LLMSTUDIO_TOKEN": TOKEN})
    ds = studio.upload().json()
    yield {"studio": studio, "root": root, "outside": outside, "clean": clean, "dataset": ds["id"]}
    studio.stop()


def copy_model(env, name, link=None, target=None):
    d = env["root"] / name
    shutil.copytree(env["clean"], d)
    if link:
        (d / link).unlink()
        (d / link).symlink_to(target)
    return d


def no_secret(*texts):
    for t in texts:
        assert SECRET not in t, t[:500]


def test_symlinked_files_refused_at_creation(env):
    s = env["studio"]
    for link, target in [("tokenizer.json", env["outside"] / "tokenizer.json"), ("config.json", env["outside"] / "passwd"),
                         ("model.safetensors", env["outside"] / "passwd")]:
        d = copy_model(env, f"link-{link}", link, target)
        r = s.post("/api/experiments", json={"dataset_id": env["dataset"], "llm_backbone": str(d), "config": QUICK})
        msg = error_of(r, 403)
        print(f"{link} -> outside: {r.status_code} {msg[:160]}")
        assert link in msg and "symbolic link" in msg
        no_secret(r.text)
        assert str(target) not in msg  # nor where it points
    # A link inside the folder (or to another allowed file) is fine.
    d = copy_model(env, "inner-link")
    (d / "tokenizer.json").rename(d / "tok-real.json")
    (d / "tokenizer.json").symlink_to(d / "tok-real.json")
    r = s.post("/api/experiments", json={"dataset_id": env["dataset"], "llm_backbone": str(d), "config": QUICK})
    assert r.status_code == 201, r.text
    assert s.delete(f"/api/experiments/{r.json()['id']}").status_code == 204


def test_symlink_planted_later_refused_for_start_chat_and_export(env):
    s = env["studio"]
    d = copy_model(env, "later")
    # Created clean, then the tokenizer is swapped for a link out: start refuses.
    r = s.post("/api/experiments", json={"dataset_id": env["dataset"], "llm_backbone": str(d), "config": QUICK})
    assert r.status_code == 201, r.text
    pending = r.json()["id"]
    (d / "tokenizer.json").rename(d / "tokenizer.json.bak")
    (d / "tokenizer.json").symlink_to(env["outside"] / "tokenizer.json")
    r = s.post(f"/api/experiments/{pending}/start")
    no_secret(r.text)
    assert "tokenizer.json" in error_of(r, 403)
    assert s.get(f"/api/experiments/{pending}").json()["status"] == "created"
    (d / "tokenizer.json").unlink()
    (d / "tokenizer.json.bak").rename(d / "tokenizer.json")
    exp = train(s, env["dataset"], d, "later-trained")
    # Finished; now the backbone's tokenizer points out: /v1 and export refuse, nothing is written.
    (d / "tokenizer.json").rename(d / "tokenizer.json.bak")
    (d / "tokenizer.json").symlink_to(env["outside"] / "tokenizer.json")
    r = chat(s, exp["id"])
    no_secret(r.text)
    assert "tokenizer.json" in error_of(r, 403)
    for mode in ("merged", "adapter"):
        r = s.post(f"/api/experiments/{exp['id']}/export", json={"mode": mode})
        no_secret(r.text)
        assert "tokenizer.json" in error_of(r, 403)
    exports = s.data_dir / "exports" / exp["id"]
    assert not exports.exists() or not any(exports.iterdir())
    # Restored: the export works and its .tar holds the folder's own tokenizer, not the outside file.
    (d / "tokenizer.json").unlink()
    (d / "tokenizer.json.bak").rename(d / "tokenizer.json")
    r = s.post(f"/api/experiments/{exp['id']}/export", json={"mode": "merged"})
    assert r.status_code == 201, r.text
    tar = s.get(r.json()["download"])
    assert tar.status_code == 200
    names = tarfile.open(fileobj=io.BytesIO(tar.content)).getnames()
    assert any(n.endswith("tokenizer.json") for n in names), names
    assert SECRET.encode() not in tar.content
    logs = s.get(f"/api/experiments/{exp['id']}/logs").json()["text"]
    no_secret(logs, json.dumps(s.get("/api/experiments").json()))


def test_training_child_checks_its_backbone(env, llms_bin, tmp_path):
    d = copy_model(env, "child", "tokenizer.json", env["outside"] / "tokenizer.json")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"llm_backbone: {d}\noutput_directory: {tmp_path / 'out'}\n"
                   f"dataset:\n  train_dataframe: {DATASET}\n  prompt_column: [instruction]\n  answer_column: output\n"
                   "training:\n  epochs: 1\n")
    p = run_cli(llms_bin, "train", "-c", cfg, "--device", "cpu", check=False,
                env={**os.environ, "LLMSTUDIO_CONFINE_ROOTS": str(env["root"])}, timeout=120)
    print(p.stderr.strip()[-300:])
    assert p.returncode != 0 and "symbolic link" in p.stderr and "tokenizer.json" in p.stderr
    no_secret(p.stdout, p.stderr)


def test_training_children_do_not_inherit_the_token(env):
    s = env["studio"]
    r = s.post("/api/experiments", json={"dataset_id": env["dataset"], "llm_backbone": str(env["clean"]),
                                         "config": QUICK, "start": True})
    assert r.status_code == 201, r.text
    environ = None
    deadline = time.time() + 60
    while environ is None and time.time() < deadline:
        for p in pathlib.Path("/proc").iterdir():
            try:
                if p.name.isdigit() and int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == s.proc.pid:
                    # After execve: the train command line and its own environment block.
                    cmd, block = (p / "cmdline").read_bytes(), (p / "environ").read_bytes()
                    if b"train" in cmd.split(b"\0") and block:
                        environ = block.split(b"\0")
                        break
            except (OSError, IndexError, ValueError):
                continue
        time.sleep(0.01)
    assert environ is not None, "no training child seen"
    names = {e.split(b"=", 1)[0] for e in environ if e}
    print(f"child environment: {len(names)} variables; LLMSTUDIO_TOKEN present: {b'LLMSTUDIO_TOKEN' in names}")
    assert b"LLMSTUDIO_TOKEN" not in names and not any(TOKEN.encode() in e for e in environ)
    assert b"LLMSTUDIO_CONFINE_ROOTS" in names
    assert s.wait_status(r.json()["id"], {"finished", "failed"})["status"] == "finished"


@pytest.mark.parametrize("section,key,value,expected", [
    ("training", "batch_size", 1e12, "[1, 65536]"),
    ("training", "lora_r", 2**62, "[1, 4096]"),
    ("training", "epochs", 10**9, "[0, 10000]"),
    ("training", "grad_accumulation", 10**6, "[1, 65536]"),
    ("tokenizer", "max_length", 2**40, "[1, 1048576]"),
    ("prediction", "max_length_inference", 2**40, "[1, 1048576]"),
])
def test_config_upper_bounds(env, section, key, value, expected):
    cfg = json.loads(json.dumps(QUICK))
    cfg.setdefault(section, {})[key] = value
    t = time.time()
    r = env["studio"].post("/api/experiments", json={"dataset_id": env["dataset"], "llm_backbone": str(env["clean"]),
                                                     "config": cfg, "start": True})
    msg = error_of(r, 400)
    print(f"{section}.{key}={value}: {r.status_code} in {time.time() - t:.2f} s: {msg[:120]}")
    assert f"{section}.{key}" in msg and expected in msg, msg


def test_experiment_name_limit(env):
    s = env["studio"]
    body = {"dataset_id": env["dataset"], "llm_backbone": str(env["clean"]), "config": QUICK}
    for size in (257, 900_000):
        msg = error_of(s.post("/api/experiments", json={**body, "name": "n" * size}), 400)
        assert "256 bytes" in msg and len(msg) < 300, msg[:300]
    r = s.post("/api/experiments", json={**body, "name": "é" * 128})  # 256 bytes
    assert r.status_code == 201, r.text
    # A clone's "<name> (copy)" is cut to the limit at a character boundary, not refused.
    c = s.post(f"/api/experiments/{r.json()['id']}/clone", json={})
    assert c.status_code == 201, c.text
    assert c.json()["name"] == "é" * 124 + " (copy)", c.json()["name"]
    for e in (c, r):
        assert s.delete(f"/api/experiments/{e.json()['id']}").status_code == 204


def test_dataset_used_by_any_experiment_is_kept(env):
    s = env["studio"]
    ds = s.upload(name="kept").json()
    exps = []
    for name in ("first", "second"):
        r = s.post("/api/experiments", json={"name": name, "dataset_id": ds["id"], "llm_backbone": str(env["clean"]),
                                             "config": QUICK})
        assert r.status_code == 201 and r.json()["status"] == "created", r.text
        exps.append(r.json()["id"])
    msg = error_of(s.delete(f"/api/datasets/{ds['id']}"), 409)
    print(msg)
    assert all(e in msg for e in exps) and "delete" in msg
    assert s.get(f"/api/datasets/{ds['id']}").status_code == 200
    for e in exps:
        assert s.delete(f"/api/experiments/{e}").status_code == 204
    assert s.delete(f"/api/datasets/{ds['id']}").status_code == 204


def test_files_and_folders_are_private(env):
    s = env["studio"]
    data = s.data_dir
    if not any(data.rglob("*.console.log")):  # run alone: make the studio write a run's files too
        train(s, env["dataset"], env["clean"], "modes")
    assert any(data.rglob("*.console.log")) and any(data.rglob("data.csv")) and (data / "studio.db").exists()
    loose = []
    count = 0
    for p in [data, *data.rglob("*")]:
        if p.is_symlink():
            continue
        count += 1
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            loose.append(f"{oct(mode)} {p}")
    print(f"{count} files and folders under the data folder, {len(loose)} readable by others")
    assert not loose, loose[:20]
