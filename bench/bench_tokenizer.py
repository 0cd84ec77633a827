#!/usr/bin/env python3
"""Tokenizer encode throughput: llmstudio (C++) vs the Python `tokenizers` library (Rust), single-threaded.

Both encode the same texts (the paragraphs of ../shared/fixtures/text/moby-dick.txt, one encode call each, as a
trainer would) in the same run. Ours runs through `llmstudio tokenize --jsonl IN --no-decode --time`, which
reports the time spent in encode() only (not process start, tokenizer loading or JSON I/O); the reference is
timed around its encode() loop the same way. Each side runs --repeat times (fresh process / fresh Tokenizer,
so word caches start cold) and the best time counts. Token counts of both sides must agree.

Usage: .venv/bin/python bench/bench_tokenizer.py [--bin build/bin/llmstudio] [--tokenizers llama3 gpt2 ...]
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # before importing tokenizers
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LLMS_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


def ours(binary: Path, tokenizer: Path, jsonl: Path, repeat: int) -> tuple[float, int]:
    best, tokens = float("inf"), -1
    for _ in range(repeat):
        res = subprocess.run(
            [str(binary), "tokenize", "--tokenizer", str(tokenizer), "--jsonl", str(jsonl), "--no-decode", "--time"],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            sys.exit(f"llmstudio failed: {res.stderr}")
        stats = json.loads(res.stderr.strip().splitlines()[-1])
        best = min(best, stats["encode_seconds"])
        tokens = stats["tokens"]
    return best, tokens


def reference(tokenizer: Path, texts: list[str], repeat: int) -> tuple[float, int]:
    from tokenizers import Tokenizer

    best, tokens = float("inf"), -1
    for _ in range(repeat):
        tok = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
        t0 = time.perf_counter()
        n = 0
        for t in texts:
            n += len(tok.encode(t).ids)
        best = min(best, time.perf_counter() - t0)
        tokens = n
    return best, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("LLMS_BIN", str(REPO / "build" / "bin" / "llmstudio")))
    ap.add_argument("--tokenizers", nargs="+", default=["llama3", "gpt2", "mistral-v0.1"])
    ap.add_argument("--text", default=str(SHARED / "text" / "moby-dick.txt"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    binary = Path(args.bin)
    if not binary.exists():
        sys.exit(f"llmstudio binary not found at {binary} (build it, or pass --bin / set LLMS_BIN)")
    text = Path(args.text).read_text(encoding="utf-8")
    texts = [p for p in text.split("\n\n") if p.strip()]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    import tokenizers

    print(f"{len(texts)} paragraphs, {nbytes / 1e6:.2f} MB; tokenizers {tokenizers.__version__}; single thread; "
          f"best of {args.repeat}")
    print(f"{'tokenizer':<14} {'ours MB/s':>10} {'tokenizers MB/s':>16} {'ratio':>7} {'tokens':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "texts.jsonl"
        jsonl.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
        for name in args.tokenizers:
            tok_dir = SHARED / "tokenizers" / name
            if not (tok_dir / "tokenizer.json").exists():
                print(f"{name:<14} skipped ({tok_dir} absent)")
                continue
            t_ours, n_ours = ours(binary, tok_dir, jsonl, args.repeat)
            t_ref, n_ref = reference(tok_dir, texts, args.repeat)
            mbs_ours, mbs_ref = nbytes / t_ours / 1e6, nbytes / t_ref / 1e6
            flag = "" if n_ours == n_ref else f"  TOKEN COUNT MISMATCH ({n_ours} vs {n_ref})"
            print(f"{name:<14} {mbs_ours:>10.2f} {mbs_ref:>16.2f} {mbs_ours / mbs_ref:>6.2f}x {n_ours:>9}{flag}")


if __name__ == "__main__":
    main()
