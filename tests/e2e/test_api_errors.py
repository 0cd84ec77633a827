"""Every safety rule of issue 7 §3 against a real `llmstudio ui`: uploaded file names never become paths,
imports outside --allow-path are refused (also through "..", symlinks and relative paths), oversized uploads and
bodies get 413, malformed JSON and bad settings get 400 naming the key, unknown ids 404, and a studio bound to a
non-loopback address refuses to start without a token and then checks it on every /api and /v1 route."""
import os
import subprocess

import pytest
import requests

from studio_proc import DATASET, Studio, error_of, free_port
from tiny_tokenized_model import make_tokenized_model


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("roots")
    allowed = base / "allowed"
    allowed.mkdir()
    make_tokenized_model(allowed / "tiny")
    (allowed / "ok.csv").write_bytes(DATASET.read_bytes())
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a,b\n1,2\n")
    make_tokenized_model(outside / "model")
    os.symlink(outside / "secret.csv", allowed / "link.csv")
    return base, allowed, outside


@pytest.fixture(scope="module")
def studio(llms_bin, roots, tmp_path_factory):
    s = Studio(llms_bin, tmp_path_factory.mktemp("studio") / "data", allow=[roots[1]], extra=["--max-upload-mb", "1"])
    yield s
    s.stop()


def test_upload_file_name_never_becomes_a_path(studio, roots):
    base = roots[0]
    for evil in ["../../../../evil.csv", "..\\..\\evil.csv", "/tmp/evil.csv", "a/../../b.csv"]:
        r = studio.upload(filename=evil)
        assert r.status_code == 201, r.text
        ds = r.json()
        assert "/" not in ds["filename"] and "\\" not in ds["filename"]
        stored = studio.data_dir / "datasets" / ds["id"]
        assert sorted(p.name for p in stored.iterdir()) == ["data.csv"], list(stored.iterdir())
    assert not (base / "evil.csv").exists() and not (studio.data_dir.parent / "evil.csv").exists()
    # Unsupported extensions (a script, no extension) are refused; nothing is left behind.
    before = set((studio.data_dir / "datasets").iterdir())
    for bad in ["../../x.sh", "noext", "data.csv/.."]:
        assert "unsupported extension" in error_of(studio.upload(filename=bad), 400)
    assert set((studio.data_dir / "datasets").iterdir()) == before


def test_upload_not_a_table_and_not_multipart(studio, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    msg = error_of(studio.upload(path=bad), 400)
    assert "bad.jsonl" in msg and str(studio.data_dir) not in msg
    error_of(studio.post("/api/datasets", data=b"plain body", headers={"Content-Type": "text/plain"}), 415)
    error_of(studio.post("/api/datasets", json={"path": "x.csv"}), 400)  # JSON: not an upload
    error_of(studio.post("/api/datasets", files={"other": ("x.csv", b"a\n1\n")}), 400)


def test_oversized_upload_is_413_and_leaves_nothing(studio, tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "w") as f:
        f.write("prompt,answer\n")
        while f.tell() < (1 << 20) + 50_000:
            f.write("x" * 100 + ",y\n")
    before = set((studio.data_dir / "datasets").iterdir())
    error_of(studio.upload(path=big), 413)
    assert set((studio.data_dir / "datasets").iterdir()) == before
    # Without Content-Length (chunked): the server counts and refuses too.
    def gen():
        yield b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        with open(big, "rb") as f:
            yield from iter(lambda: f.read(65536), b"")
        yield b"\r\n--zzz--\r\n"
    r = studio.post("/api/datasets", data=gen(), headers={"Content-Type": "multipart/form-data; boundary=zzz"})
    error_of(r, 413)
    assert set((studio.data_dir / "datasets").iterdir()) == before
    # A JSON body over the JSON limit (1 MiB).
    error_of(studio.post("/api/experiments", data=b"{" + b" " * (1 << 20) + b"}",
                         headers={"Content-Type": "application/json"}), 413)
    assert studio.get("/api/health").status_code == 200


def test_import_only_under_allowed_roots(studio, roots):
    _, allowed, outside = roots
    r = studio.post("/api/datasets/import", json={"path": str(allowed / "ok.csv"), "name": "ok"})
    assert r.status_code == 201 and r.json()["rows"] == 208, r.text
    for p in [str(outside / "secret.csv"), str(allowed / ".." / "outside" / "secret.csv"), "/etc/passwd",
              str(allowed / "link.csv"), str(allowed) + "/../../../../etc/hostname", str(allowed) + "-evil/x.csv"]:
        msg = error_of(studio.post("/api/datasets/import", json={"path": p}), 403)
        assert "outside the allowed folders" in msg
    error_of(studio.post("/api/datasets/import", json={"path": "relative/ok.csv"}), 400)
    error_of(studio.post("/api/datasets/import", json={"path": str(allowed / "missing.csv")}), 400)
    error_of(studio.post("/api/datasets/import", json={"path": str(allowed)}), 400)  # a folder
    error_of(studio.post("/api/datasets/import", json={"path": 5}), 400)
    error_of(studio.post("/api/datasets/import", json={}), 400)


def test_bad_json_and_bad_settings(studio, roots):
    _, allowed, outside = roots
    for body in [b"{not json", b"[1, 2]", b"", b"\xff\xfe"]:
        r = studio.post("/api/experiments", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r.text)
        error_of(r, 400)
    ds = studio.upload().json()
    good = {"dataset_id": ds["id"], "llm_backbone": str(allowed / "tiny")}
    cases = [
        ({"training": {"learning_rate": "fast"}}, "training.learning_rate"),
        ({"training": {"optimizer": "Foo"}}, "allowed values"),
        ({"training": {"batch_size": 0}}, "training.batch_size"),
        ({"training": {"learning_rate": -1}}, "training.learning_rate"),
        ({"training": {"no_such_key": 1}}, "training.no_such_key"),
        ({"nosection": {"a": 1}}, "nosection"),
        ({"dataset": {"answer_column": "missing_col"}}, None),  # data checked only when training: may pass
        ({"dataset": {"train_dataframe": "/etc/passwd"}}, "set by the studio"),
        ({"training": "x"}, "config.training"),
    ]
    for config, needle in cases:
        r = studio.post("/api/experiments", json={**good, "config": config})
        if needle is None:
            assert r.status_code in (201, 400), r.text
            continue
        assert r.status_code == 400, (config, r.text)
        msg = error_of(r, 400)
        assert needle in msg, (config, msg)
    error_of(studio.post("/api/experiments", json={**good, "llm_backbone": str(outside / "model")}), 403)
    error_of(studio.post("/api/experiments", json={**good, "dataset_id": "ds_nope"}), 400)
    error_of(studio.post("/api/experiments", json={"llm_backbone": str(allowed / "tiny")}), 400)
    error_of(studio.post("/api/experiments", json={**good, "start": "yes"}), 400)
    error_of(studio.get(f"/api/datasets/{ds['id']}/rows", params={"offset": "x"}), 400)
    error_of(studio.get(f"/api/datasets/{ds['id']}/rows", params={"limit": 100000}), 400)
    error_of(studio.get("/api/compare"), 400)
    error_of(studio.post("/v1/chat/completions", json={"messages": "hi"}), 400)
    error_of(studio.post("/v1/chat/completions", json={"model": "x", "messages": [{"role": "user", "content": "hi"}],
                                                      "max_tokens": -1}), 400)


def test_unknown_ids_and_routes_are_404(studio):
    for method, path in [("get", "/api/datasets/ds_nope"), ("get", "/api/datasets/ds_nope/rows"),
                         ("delete", "/api/datasets/ds_nope"), ("get", "/api/experiments/exp_nope"),
                         ("post", "/api/experiments/exp_nope/start"), ("post", "/api/experiments/exp_nope/stop"),
                         ("post", "/api/experiments/exp_nope/clone"), ("delete", "/api/experiments/exp_nope"),
                         ("get", "/api/experiments/exp_nope/metrics"), ("get", "/api/experiments/exp_nope/logs"),
                         ("get", "/api/experiments/exp_nope/config"), ("get", "/api/experiments/exp_nope/predictions"),
                         ("get", "/api/experiments/exp_nope/events"), ("post", "/api/experiments/exp_nope/export"),
                         ("get", "/api/experiments/exp_nope/exports/x.tar"), ("get", "/api/compare?ids=exp_nope"),
                         ("get", "/api/nothing/here"), ("get", "/v2/models")]:
        error_of(getattr(studio, method)(path), 404)
    error_of(studio.post("/v1/chat/completions", json={"model": "exp_nope", "messages": [{"role": "user", "content": "hi"}]}),
             404)


def test_export_download_name_cannot_escape(studio, roots):
    _, allowed, _ = roots
    ds = studio.upload().json()
    exp = studio.post("/api/experiments", json={"dataset_id": ds["id"], "llm_backbone": str(allowed / "tiny")}).json()
    error_of(studio.post(f"/api/experiments/{exp['id']}/export", json={"mode": "merged"}), 409)  # not trained
    for name in ["..", "..%2F..%2Fstudio.db", "%2e%2e"]:
        r = studio.get(f"/api/experiments/{exp['id']}/exports/{name}.tar")
        assert r.status_code == 404, (name, r.status_code)


def test_public_bind_needs_a_token(llms_bin, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "LLMSTUDIO_TOKEN"}
    proc = subprocess.run([str(llms_bin), "ui", "--host", "0.0.0.0", "--port", str(port), "--data-dir",
                           str(tmp_path / "d")], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0 and "refusing to listen on 0.0.0.0 without an access token" in proc.stderr, proc.stderr
    assert not (tmp_path / "d" / "studio.db").exists()

    s = Studio(llms_bin, tmp_path / "data", host="0.0.0.0", env={"LLMSTUDIO_TOKEN": "s3cret-token"})
    try:
        bare = requests.Session()
        for path in ["/api/health", "/api/datasets", "/api/experiments", "/v1/models", "/api/config/schema"]:
            error_of(bare.get(s.url + path), 401)
            error_of(bare.get(s.url + path, headers={"Authorization": "Bearer wrong"}), 401)
            assert bare.get(s.url + path, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        error_of(bare.post(s.url + "/v1/chat/completions", json={}), 401)
        error_of(bare.post(s.url + "/api/datasets", files={"file": ("a.csv", b"a\n1\n")}), 401)
        # EventSource cannot send headers: ?token= works on GET (404 here = past the token check).
        assert bare.get(s.url + "/api/experiments/exp_x/events?token=s3cret-token").status_code == 404
        error_of(bare.get(s.url + "/api/experiments/exp_x/events?token=nope"), 401)
        # The UI itself is served without a token (it asks for one on 401).
        assert bare.get(s.url + "/").status_code == 200
    finally:
        s.stop()
