#!/usr/bin/env python3
"""`make bench`: the training benchmark of this machine (bench_gpu.py's train rows when torch sees a CUDA GPU,
else bench_cpu_train.py), then the tokenizer benchmark (bench_tokenizer.py). The training results are written to
docs/verified/<gpu-or-cpu>-bench-train-<date>.json; the tables are printed.

usage: .venv/bin/python bench/run_all.py [--llms build/bin/llmstudio] [--rows ...] [--steps N] [--no-compile-ref]
       [--skip-tokenizer]
Tokenizers: $LLMS_SHARED_FIXTURES/tokenizers (default ../shared/fixtures/tokenizers): llama3 on the GPU, gpt2 on
the CPU (the 135M shape's vocabulary size is close to gpt2's).
"""
import argparse
import datetime
import os
import pathlib
import re
import subprocess
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = pathlib.Path(os.environ.get("LLMS_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
sys.path.insert(0, str(HERE))


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llms", default=os.environ.get("LLMS_BIN", str(REPO / "build" / "bin" / "llmstudio")))
    ap.add_argument("--rows", default="default", help="GPU rows (bench_gpu.py --rows)")
    ap.add_argument("--steps", type=int, default=0, help="override the steps of every row")
    ap.add_argument("--compile-ref", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out-dir", type=pathlib.Path, default=REPO / "docs" / "verified")
    ap.add_argument("--skip-tokenizer", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="CPU bench: runs (a shared CPU: each is reported)")
    a = ap.parse_args(argv)
    if not pathlib.Path(a.llms).exists():
        sys.exit(f"llmstudio binary not found at {a.llms} (make build, or pass --llms / set LLMS_BIN)")
    date = datetime.date.today().isoformat()
    a.out_dir.mkdir(parents=True, exist_ok=True)
    if torch.cuda.is_available():
        import bench_gpu
        out = a.out_dir / f"{slug(torch.cuda.get_device_name(0))}-bench-train-{date}.json"
        args = ["--llms", a.llms, "--tokenizer", str(SHARED / "tokenizers" / "llama3"), "--out", str(out),
                "--rows", a.rows, "--only", "train", "--compile-ref" if a.compile_ref else "--no-compile-ref"]
        if a.steps:
            args += ["--steps", str(a.steps)]
        bench_gpu.main(args)
    else:
        import bench_cpu_train
        out = a.out_dir / f"cpu-bench-train-{date}.json"
        args = ["--llms", a.llms, "--tokenizer", str(SHARED / "tokenizers" / "gpt2"), "--out", str(out),
                "--repeat", str(a.repeat)]
        if a.steps:
            args += ["--steps", str(a.steps)]
        bench_cpu_train.main(args)
    if not a.skip_tokenizer:
        print(flush=True)
        subprocess.run([sys.executable, str(HERE / "bench_tokenizer.py"), "--bin", a.llms], check=True)


if __name__ == "__main__":
    main()
