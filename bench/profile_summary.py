#!/usr/bin/env python3
"""Per-op summary of a Kineto / torch.profiler chrome trace (JSON, or .json.gz), like key_averages():

* GPU kernels (events with "cat" == "kernel", plus "gpu_memcpy" / "gpu_memset"): name (60 chars), count, total ms,
  % of GPU time, average us; the top --top. GPU busy time (union of the kernel intervals over all streams) against
  the wall span from the first kernel's start to the last one's end, per step (--steps, default: the number of
  ProfilerStep# annotations, else 1). Then the same kernels grouped by the CPU op that launched them: a kernel's
  "External id" is that of the innermost CPU op (cat "cpu_op") open at its launch.
* A CPU-only trace (no kernels): the CPU ops ("cat" == "cpu_op") by self time (own time less that of the ops
  nested inside it on the same thread) with their total (inclusive) time, and the busy / wall time of the
  top-level ops.

usage: python bench/profile_summary.py TRACE.json[.gz] [--steps N] [--top 30]
"""
import argparse
import collections
import gzip
import json
import pathlib
import re
import sys

GPU_CATS = ("kernel", "gpu_memcpy", "gpu_memset")


def load(path):
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        doc = json.load(f)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def short(name, n=60):
    return name if len(name) <= n else name[: n - 3] + "..."


def union_us(intervals):
    """Total length of the union of (start, end) intervals."""
    busy, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if e <= end:
            continue
        busy += e - max(s, end)
        end = e
    return busy


def count_steps(events):
    n = sum(1 for e in events if re.match(r"ProfilerStep#\d+$", e.get("name", "")) and e.get("cat") != "gpu_user_annotation")
    return n or 1


def table(title, stats, total_us, top, self_col=False):
    """stats: name -> [count, time_us(, total_us)] sorted by time."""
    lines = [title]
    if self_col:
        lines.append(f"{'name':<60} {'count':>7} {'self ms':>10} {'% self':>7} {'total ms':>10} {'avg us':>10}")
    else:
        lines.append(f"{'name':<60} {'count':>7} {'total ms':>10} {'% GPU':>7} {'avg us':>10}")
    for name, st in sorted(stats.items(), key=lambda kv: -kv[1][1])[:top]:
        count, t = st[0], st[1]
        pct = 100.0 * t / total_us if total_us else 0.0
        if self_col:
            lines.append(f"{short(name):<60} {count:>7} {t / 1e3:>10.3f} {pct:>6.1f}% {st[2] / 1e3:>10.3f} {t / count:>10.1f}")
        else:
            lines.append(f"{short(name):<60} {count:>7} {t / 1e3:>10.3f} {pct:>6.1f}% {t / count:>10.1f}")
    if len(stats) > top:
        rest = sorted(stats.items(), key=lambda kv: -kv[1][1])[top:]
        t = sum(st[1] for _, st in rest)
        lines.append(f"{'(' + str(len(rest)) + ' more)':<60} {sum(st[0] for _, st in rest):>7} {t / 1e3:>10.3f} "
                     f"{100.0 * t / total_us if total_us else 0:>6.1f}%")
    return lines


def summarize_gpu(events, kernels, steps, top):
    stats = collections.defaultdict(lambda: [0, 0.0])
    for k in kernels:
        st = stats[k["name"]]
        st[0] += 1
        st[1] += k["dur"]
    total = sum(k["dur"] for k in kernels)
    busy = union_us((k["ts"], k["ts"] + k["dur"]) for k in kernels)
    span = max(k["ts"] + k["dur"] for k in kernels) - min(k["ts"] for k in kernels)
    lines = [f"GPU: {len(kernels)} kernels/copies over {steps} step(s); per step: {len(kernels) / steps:.0f} kernels, "
             f"kernel time {total / steps / 1e3:.2f} ms, GPU busy {busy / steps / 1e3:.2f} ms of wall span "
             f"{span / steps / 1e3:.2f} ms ({100.0 * busy / span if span else 0:.1f}% busy)", ""]
    lines += table(f"top {top} GPU kernels by total time", stats, total, top)
    # Grouped by the launching CPU op (External id of the innermost cpu_op at launch).
    ops = {}
    for e in events:
        if e.get("cat") == "cpu_op":
            ext = (e.get("args") or {}).get("External id")
            if ext is not None:
                ops[ext] = e["name"]
    by_op = collections.defaultdict(lambda: [0, 0.0])
    linked = 0
    for k in kernels:
        ext = (k.get("args") or {}).get("External id")
        name = ops.get(ext)
        if name is not None:
            linked += 1
        st = by_op[name or "(no launching cpu_op)"]
        st[0] += 1
        st[1] += k["dur"]
    lines.append("")
    if linked:
        lines += table(f"GPU time grouped by the launching CPU op (top {top}; {linked}/{len(kernels)} kernels linked)",
                       by_op, total, top)
    else:
        lines.append("GPU time by launching CPU op: the trace links no kernel to a cpu_op (no 'External id')")
    return lines


def self_times(ops):
    """name -> [count, self_us, total_us] with nesting per (pid, tid); also the top-level intervals."""
    stats = collections.defaultdict(lambda: [0, 0.0, 0.0])
    top_level = []
    by_thread = collections.defaultdict(list)
    for e in ops:
        by_thread[(e.get("pid"), e.get("tid"))].append(e)
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, event, child time]
        for e in evs:
            end = e["ts"] + e["dur"]
            while stack and stack[-1][0] <= e["ts"]:
                _close(stack.pop(), stats)
            if stack:
                stack[-1][2] += e["dur"]
            else:
                top_level.append((e["ts"], end))
            stack.append([end, e, 0.0])
        while stack:
            _close(stack.pop(), stats)
    return stats, top_level


def _close(frame, stats):
    _, e, child = frame
    st = stats[e["name"]]
    st[0] += 1
    st[1] += max(0.0, e["dur"] - child)
    st[2] += e["dur"]


def summarize_cpu(ops, steps, top):
    stats, top_level = self_times(ops)
    total_self = sum(st[1] for st in stats.values())
    busy = union_us(top_level)
    span = max(e for _, e in top_level) - min(s for s, _ in top_level)
    lines = [f"CPU (no GPU kernels in the trace): {len(ops)} ops over {steps} step(s); per step: op time "
             f"{busy / steps / 1e3:.2f} ms of wall span {span / steps / 1e3:.2f} ms", ""]
    return lines + table(f"top {top} CPU ops by self time", stats, total_self, top, self_col=True)


def summarize(events, steps=None, top=30):
    steps = steps or count_steps(events)
    kernels = [e for e in events if e.get("cat") in GPU_CATS]
    if kernels:
        lines = summarize_gpu(events, kernels, steps, top)
    else:
        ops = [e for e in events if e.get("cat") == "cpu_op"]
        if not ops:
            return "no kernel and no cpu_op events in the trace\n"
        lines = summarize_cpu(ops, steps, top)
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace", type=pathlib.Path)
    ap.add_argument("--steps", type=int, default=0, help="steps in the trace (default: ProfilerStep# count, else 1)")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args(argv)
    sys.stdout.write(summarize(load(a.trace), a.steps or None, a.top))


if __name__ == "__main__":
    main()
