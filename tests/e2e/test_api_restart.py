"""A studio killed with SIGKILL while it trains: its child `llmstudio train` gets SIGINT (parent-death signal),
checkpoints and exits; the restarted studio shows the run as "interrupted", and /start resumes it with
`llmstudio train --resume` to the end: every step is logged, the adapter is written, and the result equals an
uninterrupted run of the same config (seeded) within float tolerance. Also: stop -> "stopped" -> start resumes."""
import os
import signal
import time

import pytest
import torch
from safetensors.torch import load_file

from studio_proc import TRAIN_CONFIG, Studio
from tiny_tokenized_model import make_tokenized_model

# Long enough to be caught mid-run: batch 4 (about 46 steps of the tiny model).
CONFIG = {**TRAIN_CONFIG, "training": {**TRAIN_CONFIG["training"], "epochs": 1, "batch_size": 4}}


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_tokenized_model(root / "tiny")
    return root


def _wait_steps(studio, exp_id, n, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = studio.get(f"/api/experiments/{exp_id}/metrics").json()["metrics"]
        if sum(1 for x in m if x["type"] == "train") >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} train steps after {timeout} s")


def _pid_gone(pid, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_sigkill_restart_resume(llms_bin, models_root, tmp_path):
    data = tmp_path / "data"
    a = Studio(llms_bin, data, allow=[models_root])
    ds = a.upload().json()
    exp = a.post("/api/experiments", json={"name": "long", "dataset_id": ds["id"], "llm_backbone": str(models_root / "tiny"),
                                            "config": CONFIG, "start": True}).json()
    a.wait_status(exp["id"], {"running"})
    _wait_steps(a, exp["id"], 3)
    # The reference: the same config, uninterrupted, created now (queued behind the running one).
    ref = a.post("/api/experiments", json={"name": "ref", "dataset_id": ds["id"], "llm_backbone": str(models_root / "tiny"),
                                           "config": CONFIG}).json()
    child = int(open(f"{exp['dir']}.console.log").read().count("starting:"))  # one start so far
    assert child == 1
    a.stop(signal.SIGKILL)
    # The orphaned trainer got SIGINT from the kernel: it checkpoints and exits by itself.
    time.sleep(0.5)
    b = Studio(llms_bin, data, allow=[models_root], port=a.port)  # the port is free again (the child closed it)
    try:
        got = b.get(f"/api/experiments/{exp['id']}").json()
        assert got["status"] == "interrupted", got
        assert 0 < got["progress"]["step"] < got["progress"]["total_steps"]
        assert b.post(f"/api/experiments/{exp['id']}/start").json()["status"] in ("queued", "running")
        done = b.wait_status(exp["id"], {"finished", "failed"}, timeout=600)
        assert done["status"] == "finished", b.get(f"/api/experiments/{exp['id']}/logs").json()["text"][-3000:]
        log = b.get(f"/api/experiments/{exp['id']}/logs").json()["text"]
        assert "--resume" in log and "(resumed)" in log
        train = [m for m in b.get(f"/api/experiments/{exp['id']}/metrics").json()["metrics"] if m["type"] == "train"]
        total = done["progress"]["total_steps"]
        assert sorted({m["step"] for m in train}) == list(range(1, total + 1))
        # Same result as an uninterrupted run.
        assert b.post(f"/api/experiments/{ref['id']}/start").status_code == 200
        assert b.wait_status(ref["id"], {"finished", "failed"}, timeout=600)["status"] == "finished"
        x, y = load_file(f"{exp['dir']}/adapter_model.safetensors"), load_file(f"{ref['dir']}/adapter_model.safetensors")
        diff = max((x[k] - y[k]).abs().max().item() for k in y)
        print(f"resumed vs uninterrupted adapter: max diff {diff:.2e}")
        assert x.keys() == y.keys() and diff < 1e-5
    finally:
        b.stop()


def test_stop_then_start_resumes(llms_bin, models_root, tmp_path):
    s = Studio(llms_bin, tmp_path / "data", allow=[models_root])
    try:
        ds = s.upload().json()
        exp = s.post("/api/experiments", json={"dataset_id": ds["id"], "llm_backbone": str(models_root / "tiny"),
                                                "config": CONFIG, "start": True}).json()
        # A second experiment waits in the queue while the first runs (one job per device).
        second = s.post("/api/experiments", json={"dataset_id": ds["id"], "llm_backbone": str(models_root / "tiny"),
                                                   "config": TRAIN_CONFIG, "start": True}).json()
        assert second["status"] == "queued"
        s.wait_status(exp["id"], {"running"})
        _wait_steps(s, exp["id"], 2)
        stopped = s.post(f"/api/experiments/{exp['id']}/stop").json()
        assert stopped["status"] == "stopped" and stopped["progress"]["step"] > 0
        # The queued one runs next; stop it while queued or running, then resume the first.
        s.post(f"/api/experiments/{second['id']}/stop")
        assert s.get(f"/api/experiments/{second['id']}").json()["status"] in ("stopped", "finished")
        s.post(f"/api/experiments/{exp['id']}/start")
        assert s.wait_status(exp["id"], {"finished", "failed"}, timeout=600)["status"] == "finished"
        # Deleting removes the folder.
        assert s.delete(f"/api/experiments/{exp['id']}").status_code == 204
        assert not os.path.exists(exp["dir"])
    finally:
        s.stop()
