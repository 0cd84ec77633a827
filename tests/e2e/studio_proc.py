"""A real `llmstudio ui` process for the API tests (tests/e2e/test_api_*.py): started on a free port with a given
data folder, waited for on /api/health, killed at the end; plus small helpers (requests session with the token,
waiting for an experiment's status)."""
import os
import pathlib
import signal
import socket
import subprocess
import time

import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
DATASET = REPO / "examples" / "data" / "train.csv"

# A few optimizer steps of the tiny model on CPU (examples/data/train.csv has 208 rows).
TRAIN_CONFIG = {
    "dataset": {"prompt_column": ["instruction"], "answer_column": "output", "system_column": "None",
                "validation_size": 0.1},
    "tokenizer": {"max_length": 64},
    "training": {"epochs": 1, "batch_size": 16, "learning_rate": 0.003, "lora_r": 4, "lora_alpha": 16,
                 "evaluation_epochs": 1, "warmup_epochs": 0.0},
    "environment": {"seed": 3},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Studio:
    def __init__(self, llms_bin, data_dir, allow=(), token=None, host="127.0.0.1", port=None, extra=(), env=None):
        self.port = port or free_port()
        self.host = host
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.data_dir = pathlib.Path(data_dir)
        args = [str(llms_bin), "ui", "--host", host, "--port", str(self.port), "--data-dir", str(data_dir),
                "--device", "cpu", *map(str, extra)]
        for a in allow:
            args += ["--allow-path", str(a)]
        if token:
            args += ["--auth-token", token]
        self.log_path = self.data_dir.parent / f"studio-{self.port}.log"
        self.log = open(self.log_path, "a+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                     env={**os.environ, **(env or {})})
        self.session = requests.Session()
        session_token = token or (env or {}).get("LLMSTUDIO_TOKEN")
        if session_token:
            self.session.headers["Authorization"] = f"Bearer {session_token}"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"llmstudio ui exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.session.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.proc.kill()  # leave no server behind
        self.proc.wait()
        raise AssertionError(f"llmstudio ui did not answer /api/health within 60 s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def get(self, path, **kw):
        return self.session.get(self.url + path, timeout=kw.pop("timeout", 60), **kw)

    def post(self, path, **kw):
        return self.session.post(self.url + path, timeout=kw.pop("timeout", 120), **kw)

    def delete(self, path, **kw):
        return self.session.delete(self.url + path, timeout=kw.pop("timeout", 120), **kw)

    def upload(self, path=DATASET, filename=None, name=None):
        files = {"file": (filename or pathlib.Path(path).name, open(path, "rb"), "text/csv")}
        return self.post("/api/datasets", files=files, data={"name": name} if name else None)

    def wait_status(self, exp_id, statuses, timeout=300):
        deadline = time.time() + timeout
        exp = None
        while time.time() < deadline:
            exp = self.get(f"/api/experiments/{exp_id}").json()
            if exp["status"] in statuses:
                return exp
            time.sleep(0.3)
        logs = self.get(f"/api/experiments/{exp_id}/logs").json()["text"]
        raise AssertionError(f"experiment {exp_id} did not reach {statuses} in {timeout} s: {exp}\nlogs:\n{logs}")

    def stop(self, sig=signal.SIGTERM, timeout=120):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.session.close()
        self.log.close()
        return self.proc.returncode


def error_of(resp, status):
    """Asserts an error response: the status and the {"error": {"message", "code"}} body; returns the message."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    assert body["error"]["code"] == status and body["error"]["message"], body
    return body["error"]["message"]
