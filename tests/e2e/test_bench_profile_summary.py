"""bench/profile_summary.py against traces with known contents: a synthetic Kineto GPU trace (kernels on two
streams, linked to their launching cpu_op by "External id") and a real torch.profiler CPU trace of one LoRA-sized
training step (cpu_op events only)."""
import json
import pathlib
import re
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))
import profile_summary  # noqa: E402


def _row(text, name):
    return next(line for line in text.splitlines() if line.startswith(name))


def test_gpu_kernels_table_busy_time_and_grouping(tmp_path):
    ev = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 5, "pid": 1, "tid": 1, "args": {"External id": 7}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::add", "ts": 6, "dur": 2, "pid": 1, "tid": 1, "args": {"External id": 8}},
        # gemm 100 us + 300 us (same op), add 100 us overlapping the second gemm on another stream
        {"ph": "X", "cat": "kernel", "name": "sm90_gemm", "ts": 1000, "dur": 100, "pid": 0, "tid": 7, "args": {"External id": 7}},
        {"ph": "X", "cat": "kernel", "name": "sm90_gemm", "ts": 1200, "dur": 300, "pid": 0, "tid": 7, "args": {"External id": 7}},
        {"ph": "X", "cat": "kernel", "name": "add_kernel", "ts": 1400, "dur": 100, "pid": 0, "tid": 8, "args": {"External id": 8}},
        {"ph": "i", "cat": "kernel", "name": "instant", "ts": 1, "pid": 0, "tid": 7},  # not a complete event
    ]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    text = profile_summary.summarize(profile_summary.load(path), steps=2, top=30)
    print(text)
    gemm = _row(text, "sm90_gemm").split()
    assert gemm[1:5] == ["2", "0.400", "80.0%", "200.0"], gemm  # count, total ms, % of 500 us, avg us
    # busy = union [1000,1100] + [1200,1500] = 400 us, span 500 us, per step (2): 0.20 / 0.25 ms
    assert "GPU busy 0.20 ms of wall span 0.25 ms (80.0% busy)" in text
    grouped = text.split("grouped by the launching CPU op")[1]
    assert "3/3 kernels linked" in grouped
    assert _row(grouped.split("\n", 1)[1], "aten::mm").split()[1:4] == ["2", "0.400", "80.0%"]


def test_cpu_trace_of_a_training_step(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.SiLU(), torch.nn.Linear(256, 64))
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(32, 64)
    path = tmp_path / "cpu.json"
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            model(x).square().mean().backward()
            opt.step()
            opt.zero_grad()
    prof.export_chrome_trace(str(path))
    events = profile_summary.load(path)
    text = profile_summary.summarize(events, steps=2, top=200)
    print(text)
    assert text.startswith("CPU (no GPU kernels in the trace)")
    stats, _ = profile_summary.self_times([e for e in events if e.get("cat") == "cpu_op"])
    # aten::addmm is a leaf-ish op: listed, 4 calls (2 linears x 2 steps); self <= total for every op
    assert stats["aten::addmm"][0] == 4, stats["aten::addmm"]
    assert all(st[1] <= st[2] + 1e-6 for st in stats.values())
    # the self times of a thread's ops add up to the union of its top-level ops' time
    ops = [e for e in events if e.get("cat") == "cpu_op"]
    _, top_level = profile_summary.self_times(ops)
    total_self = sum(st[1] for st in stats.values())
    top_sum = sum(e - s for s, e in top_level)
    print(f"self sum {total_self:.1f} us, top-level sum {top_sum:.1f} us")
    assert abs(total_self - top_sum) <= 1e-6 * top_sum + 1.0
    assert re.search(r"aten::addmm\s+4\s", text)
