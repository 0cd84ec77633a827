"""The HTTP side of issue 11 against a real `llmstudio ui`: cross-origin and DNS-rebinding requests refused (403,
415), the access token checked before a body is read (an unauthenticated 300 MB POST costs no memory), ?token=
only on the routes a browser fetches by itself, slow-header clients cut off after the header deadline while
/api/health stays fast, a cap on open event streams (503 + Retry-After), Range limited to one range on files
(UI and .tar download, never amplified, never 206 without the bytes), a POST without Content-Length answered at
once, and 405 + Allow for a known route asked with another method."""
import json
import os
import pathlib
import socket
import threading
import time

import pytest
import requests

from studio_proc import TRAIN_CONFIG, Studio, error_of
from tiny_tokenized_model import make_tokenized_model

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def allowed(tmp_path_factory):
    root = tmp_path_factory.mktemp("allowed")
    make_tokenized_model(root / "tiny")
    return root


@pytest.fixture(scope="module")
def studio(llms_bin, allowed, tmp_path_factory):
    s = Studio(llms_bin, tmp_path_factory.mktemp("studio") / "data", allow=[allowed],
               extra=["--allowed-host", "studio.test", "--allow-origin", "http://app.test:5173"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def locked(llms_bin, tmp_path_factory):
    s = Studio(llms_bin, tmp_path_factory.mktemp("locked") / "data", token=TOKEN,
               extra=["--allow-origin", "http://app.test:5173"])
    yield s
    s.stop()


def raw(studio, data: bytes, timeout=5.0) -> bytes:
    """Sends raw bytes on a fresh connection and reads the response until the server closes or `timeout`."""
    with socket.create_connection(("127.0.0.1", studio.port), timeout=timeout) as c:
        c.sendall(data)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
        return out


def rss_mb(pid) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def health_ms(studio) -> float:
    t = time.perf_counter()
    r = requests.get(studio.url + "/api/health", timeout=5)
    assert r.status_code == 200
    return (time.perf_counter() - t) * 1000


def test_cross_origin_and_rebinding_requests_are_refused(studio):
    ds = studio.upload().json()
    rows = f"/api/datasets/{ds['id']}/rows"
    # A cross-site "simple" request: text/plain body, no preflight in a browser.
    msg = error_of(studio.post("/api/datasets/import", data='{"path": "/etc/passwd"}',
                               headers={"Content-Type": "text/plain"}), 415)
    assert "application/json" in msg
    evil = {"Origin": "http://evil.example"}
    msg = error_of(studio.post("/api/datasets/import", json={"path": "/x"}, headers=evil), 403)
    assert "--allow-origin" in msg, msg
    error_of(studio.post("/api/datasets", files={"file": ("a.csv", b"a,b\n1,2\n")}, headers=evil), 403)
    error_of(studio.post(f"/api/experiments/nope/start", headers=evil), 403)
    # DNS rebinding: the attacker's name in Host, for reads and deletes alike.
    for host in [f"rebind.attacker.example:{studio.port}", f"127.evil.com:{studio.port}",
                 f"127.0.0.1.evil.com:{studio.port}", f"127.0.0.1:{studio.port + 1}", "localhost"]:
        msg = error_of(studio.delete(f"/api/datasets/{ds['id']}", headers={"Host": host}), 403)
        assert "--allowed-host" in msg and "DNS rebinding" in msg, msg
        error_of(studio.get(rows, headers={"Host": host}), 403)
    assert studio.get(rows).status_code == 200, "the dataset survived"
    # This server's own names and origin, the --allowed-host name, the --allow-origin app (with CORS headers).
    for host in [f"localhost:{studio.port}", f"[::1]:{studio.port}", f"127.0.0.2:{studio.port}", "studio.test:8443"]:
        assert studio.get(rows, headers={"Host": host}).status_code == 200, host
    same = {"Origin": studio.url}
    assert studio.post("/api/datasets", files={"file": ("b.csv", b"a,b\n1,2\n")}, headers=same).status_code == 201
    r = studio.post("/api/datasets/import", json={"path": "/nope.csv"}, headers={"Origin": "http://app.test:5173"})
    assert r.status_code == 403 and "outside the allowed folders" in r.text, r.text  # past the CSRF check
    assert r.headers["Access-Control-Allow-Origin"] == "http://app.test:5173"
    pre = requests.options(studio.url + "/api/datasets/import", timeout=5,
                           headers={"Origin": "http://app.test:5173", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert studio.get("/", headers={"Origin": "http://evil.example"}).status_code == 200  # reads: CORS protects them


def test_token_checked_before_the_body(locked):
    pid = locked.proc.pid
    before = rss_mb(pid)
    total = 300 << 20
    chunk = b"x" * (1 << 20)

    def body():
        for _ in range(total // len(chunk)):
            yield chunk

    outcomes = []
    for headers in ({"Content-Length": str(total), "Content-Type": "multipart/form-data; boundary=b"},
                    {"Content-Type": "application/json"}):  # the second one chunked (no length)
        t = time.perf_counter()
        try:
            r = requests.post(locked.url + "/api/datasets", data=body(), headers=headers, timeout=30)
            error_of(r, 401)
            assert r.headers.get("Connection") == "close"
            outcomes.append(f"401 in {time.perf_counter() - t:.2f} s")
        except requests.ConnectionError as e:  # reset while sending: the server did not read the body
            outcomes.append(f"reset after {time.perf_counter() - t:.2f} s ({type(e).__name__})")
    after = rss_mb(pid)
    print(f"unauthenticated 300 MB POSTs: {outcomes}; RSS {before:.0f} -> {after:.0f} MB")
    assert after - before < 50, (before, after)
    assert locked.proc.poll() is None
    assert locked.get("/api/health").status_code == 200


def test_query_token_only_on_event_streams_and_downloads(locked):
    bare = requests.Session()
    for path in ["/api/datasets", "/api/health", "/api/experiments/exp_x", "/v1/models"]:
        error_of(bare.get(f"{locked.url}{path}?token={TOKEN}", timeout=10), 401)
    # A CORS preflight carries no credentials: answered for an --allow-origin app only.
    pre = {"Origin": "http://app.test:5173", "Access-Control-Request-Method": "POST"}
    assert bare.options(f"{locked.url}/api/datasets/import", headers=pre, timeout=10).status_code == 204
    pre["Origin"] = "http://evil.example"
    error_of(bare.options(f"{locked.url}/api/datasets/import", headers=pre, timeout=10), 401)
    for path in ["/api/experiments/exp_x/events", "/api/experiments/exp_x/exports/merged-1.tar"]:
        assert bare.get(f"{locked.url}{path}?token={TOKEN}", timeout=10).status_code == 404, path  # past the token
        error_of(bare.get(f"{locked.url}{path}?token=wrong", timeout=10), 401)
    error_of(bare.post(f"{locked.url}/api/datasets/import?token={TOKEN}", json={"path": "/x"}, timeout=10), 401)


def test_post_without_length_is_answered_at_once(studio):
    t = time.perf_counter()
    out = raw(studio, f"POST /api/datasets/import HTTP/1.1\r\nHost: 127.0.0.1:{studio.port}\r\n"
                      "Content-Type: application/json\r\n\r\n".encode())
    took = time.perf_counter() - t
    status_line = out.split(b"\r\n")[0]
    print(f"POST without Content-Length: {status_line!r} in {took:.3f} s")
    assert out.startswith(b"HTTP/1.1 400") and b"path: required" in out, out[:300]  # an empty body: {}
    assert took < 1.0
    t = time.perf_counter()
    out = raw(studio, f"POST /api/experiments/exp_nope/stop HTTP/1.1\r\nHost: 127.0.0.1:{studio.port}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 404") and time.perf_counter() - t < 1.0, out[:300]


def test_unsupported_methods_are_405_with_allow(studio):
    cases = [("PUT", "/api/health", "GET, HEAD"), ("DELETE", "/api/datasets", "GET, HEAD, POST"),
             ("PATCH", "/api/experiments/exp_x", "DELETE, GET, HEAD"), ("POST", "/v1/models", "GET, HEAD"),
             ("GET", "/v1/chat/completions", "POST"), ("TRACE", "/api/experiments", "GET, HEAD, POST"),
             ("OPTIONS", "/api/datasets/ds_x/rows", "GET, HEAD")]
    for method, path, allow in cases:
        r = requests.request(method, studio.url + path, timeout=10)
        error_of(r, 405)
        assert r.headers["Allow"] == allow, (method, path, r.headers.get("Allow"))
    error_of(requests.put(studio.url + "/api/nope", timeout=10), 404)
    error_of(requests.get(studio.url + "/api/experiments/x/y/z", timeout=10), 404)


def test_range_on_ui_files_is_one_range_at_most(studio):
    full = studio.get("/ui/app.js").content
    r = studio.get("/ui/app.js", headers={"Range": "bytes=10-109"})
    assert r.status_code == 206 and r.content == full[10:110], (r.status_code, len(r.content))
    amplify = "bytes=" + ",".join(["0-"] * 2600)
    r = studio.get("/ui/app.js", headers={"Range": amplify})
    print(f"Range with 2600 ranges ({len(amplify)} bytes): {r.status_code}, {len(r.content)} bytes (file {len(full)})")
    assert r.status_code == 200 and r.content == full
    error_of(studio.get("/ui/app.js", headers={"Range": f"bytes={len(full) + 10}-"}), 416)
    r = studio.get("/api/health", headers={"Range": "bytes=0-3"})  # JSON is never cut
    assert r.status_code == 200 and r.json()["ok"] is True


def test_range_on_the_tar_download(studio, allowed):
    ds = studio.upload().json()
    exp = studio.post("/api/experiments", json={"dataset_id": ds["id"], "llm_backbone": str(allowed / "tiny")}).json()
    export = studio.data_dir / "exports" / exp["id"] / "merged-test"
    export.mkdir(parents=True)
    (export / "a.bin").write_bytes(os.urandom(70000))
    (export / "b.txt").write_text("hello\n" * 1000)
    url = f"/api/experiments/{exp['id']}/exports/merged-test.tar"
    full = studio.get(url).content
    assert len(full) == 512 + 70144 + 512 + 6144 + 1024
    for rng, want in [("bytes=1000-2999", full[1000:3000]), ("bytes=70000-", full[70000:]),
                      ("bytes=-100", full[-100:]), (f"bytes=0-{len(full) * 2}", full)]:
        r = studio.get(url, headers={"Range": rng})
        assert r.status_code == 206 and r.content == want, (rng, r.status_code, len(r.content), len(want))
    r = studio.get(url, headers={"Range": "bytes=0-10,20-30"})
    assert r.status_code == 200 and r.content == full
    error_of(studio.get(url, headers={"Range": f"bytes={len(full)}-"}), 416)


def test_slow_header_clients_are_cut_off_and_health_stays_fast(studio):
    request = f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{studio.port}\r\nX-Slow: ".encode() + b"a" * 100
    conns, first_byte = [], []
    for _ in range(40):  # each sends its first byte at once, then one a second
        c = socket.create_connection(("127.0.0.1", studio.port), timeout=5)
        c.sendall(request[:1])
        c.setblocking(False)
        conns.append(c)
        first_byte.append(time.time())
    closed_after = {}
    latencies = []
    start = time.time()
    try:
        for i in range(1, 20):  # at most 20 s
            for k, c in enumerate(conns):
                if k in closed_after:
                    continue
                try:
                    if c.recv(4096) == b"":
                        closed_after[k] = time.time() - first_byte[k]
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed_after[k] = time.time() - first_byte[k]
                    continue
                try:
                    c.send(request[i:i + 1])
                except OSError:
                    closed_after[k] = time.time() - first_byte[k]
            latencies.append(health_ms(studio))
            if len(closed_after) == len(conns):
                break
            time.sleep(max(0.0, start + i - time.time()))
    finally:
        for c in conns:
            c.close()
    times = sorted(closed_after.values())
    print(f"/api/health during 40 slow-header clients: max {max(latencies):.0f} ms over {len(latencies)} calls; "
          f"{len(times)} slow clients cut off after {times[0] if times else -1:.1f}-{times[-1] if times else -1:.1f} s")
    assert max(latencies) < 1000
    assert len(closed_after) == len(conns), f"only {len(closed_after)} of 40 slow clients were cut off"
    assert 9 <= times[0] and times[-1] <= 13  # the 10 s header deadline (checked once a second)


def test_open_event_streams_are_capped(studio, allowed):
    ds = studio.upload().json()
    config = json.loads(json.dumps(TRAIN_CONFIG))
    config["training"]["epochs"] = 50  # long enough to keep the streams open
    exp = studio.post("/api/experiments", json={"dataset_id": ds["id"], "llm_backbone": str(allowed / "tiny"),
                                                "config": config, "start": True}).json()
    assert exp["status"] in ("queued", "running"), exp
    idle = studio.post("/api/experiments", json={"dataset_id": ds["id"], "llm_backbone": str(allowed / "tiny")}).json()
    conns, statuses = [], []
    try:
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", studio.port), timeout=10)
            c.sendall(f"GET /api/experiments/{exp['id']}/events HTTP/1.1\r\nHost: 127.0.0.1:{studio.port}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.recv(4096)
            statuses.append(head)
            conns.append(c)
        latencies = [health_ms(studio) for _ in range(5)]
        ok = [h for h in statuses if h.startswith(b"HTTP/1.1 200")]
        busy = [h for h in statuses if h.startswith(b"HTTP/1.1 503")]
        print(f"20 event streams: {len(ok)} open, {len(busy)} refused with 503; /api/health max {max(latencies):.0f} ms")
        assert len(ok) == 16 and len(busy) == 4, [h.split(b"\r\n")[0] for h in statuses]
        assert all(b"\r\nRetry-After: " in h for h in busy)
        assert max(latencies) < 1000
    finally:
        for c in conns:
            c.close()
        studio.delete(f"/api/experiments/{exp['id']}")
    # Closed streams give their slots back (the server notices within its poll interval): a stream of an idle
    # experiment (which ends at once) is served again.
    deadline = time.time() + 20
    while time.time() < deadline:
        r = requests.get(f"{studio.url}/api/experiments/{idle['id']}/events", timeout=10)
        if r.status_code != 503:
            break
        time.sleep(0.5)
    assert r.status_code == 200 and "event: status" in r.text, r.status_code
