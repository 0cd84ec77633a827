#!/usr/bin/env python3
"""CPU training speed (issue 13, "CPU training does not get slower"): `llmstudio train --device cpu` vs
transformers + PEFT + torch.optim.AdamW on this machine's CPU, in the same run, on the same data.

SmolLM2-135M shape (random init) with the --tokenizer's vocabulary, LoRA with H2O's default targets (all linear
layers of the blocks, r=16, alpha=32, dropout 0), fp32, batch 2 x 256 (every sample exactly 256 tokens), 10
optimizer steps; tokens/s over steps 3..10. Both sides use the machine's default thread count. The train code is
bench_gpu.py's (ours_train / ref_train with device cpu).

usage: .venv/bin/python bench/bench_cpu_train.py [--llms build/bin/llmstudio] [--tokenizer DIR] [--out FILE.json]
       [--repeat 2]
"""
import argparse
import datetime
import json
import os
import pathlib
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_gpu  # noqa: E402

REPO = bench_gpu.REPO
SHARED = pathlib.Path(os.environ.get("LLMS_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
ROW = bench_gpu.Row("smollm2-135m", True, 2, 256, 10, mixed=False, warmup=2)


def run_once(a, vocab, tmp, i):
    row = bench_gpu.dataclasses.replace(ROW, steps=a.steps)
    fmt = bench_gpu.PromptFormat(a.tokenizer)
    model_dir = tmp / "model"
    if not model_dir.exists():
        bench_gpu.make_model(row.shape, vocab, model_dir, a.tokenizer, "cpu")
    data = tmp / "train.csv"
    samples = bench_gpu.full_length_dataset(fmt, data, row.batch * 16, row.seq)
    ours = bench_gpu.ours_train(a.llms, model_dir, data, tmp / "exp", f"cpu-lora-{i}", row, "cpu")
    ref = bench_gpu.ref_train(model_dir, row, samples, "cpu")
    res = {"ours": ours, "transformers_peft": ref, "ratio_tokens_per_s": ours["tokens_per_s"] / ref["tokens_per_s"],
           "tokens_per_step_equal": all(t == ref["tokens_per_step"] for t in ours["tokens_per_step"])}
    print(f"run {i + 1}: ours {ours['tokens_per_s']:.1f} tok/s, transformers + PEFT {ref['tokens_per_s']:.1f} tok/s, "
          f"ratio {res['ratio_tokens_per_s']:.2f}x; tokens/step ours {sorted(set(ours['tokens_per_step']))} "
          f"reference {ref['tokens_per_step']}", flush=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llms", default=os.environ.get("LLMS_BIN", str(REPO / "build" / "bin" / "llmstudio")))
    ap.add_argument("--tokenizer", type=pathlib.Path, default=SHARED / "tokenizers" / "gpt2")
    ap.add_argument("--out", type=pathlib.Path, default=None)
    ap.add_argument("--steps", type=int, default=ROW.steps)
    ap.add_argument("--repeat", type=int, default=2, help="runs (the CPU may be shared: report each)")
    a = ap.parse_args(argv)
    from tokenizers import Tokenizer
    import peft
    import transformers
    vocab = Tokenizer.from_file(str(a.tokenizer / "tokenizer.json")).get_vocab_size()
    results = {"device": "cpu", "cpu_threads": torch.get_num_threads(), "os_cpus": os.cpu_count(),
               "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "git_commit": bench_gpu.git_commit(), "tokenizer": a.tokenizer.name, "vocab_size": vocab,
               "config": bench_gpu.dataclasses.asdict(bench_gpu.dataclasses.replace(ROW, steps=a.steps)),
               "runs": []}
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    try:
        for i in range(a.repeat):
            results["runs"].append(run_once(a, vocab, tmp, i))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nCPU train, SmolLM2-135M shape, LoRA all-linear r=16, fp32, batch {ROW.batch} x {ROW.seq}, "
          f"{a.steps} steps (tok/s over steps {ROW.warmup + 1}..{a.steps}), vocabulary {vocab}, "
          f"{results['cpu_threads']} threads")
    print(f"{'run':<5}{'ours tok/s':>12}{'ref tok/s':>12}{'ratio':>8}")
    for i, r in enumerate(results["runs"]):
        print(f"{i + 1:<5}{r['ours']['tokens_per_s']:>12.1f}{r['transformers_peft']['tokens_per_s']:>12.1f}"
              f"{r['ratio_tokens_per_s']:>7.2f}x{'' if r['tokens_per_step_equal'] else '  TOKENS/STEP DIFFER'}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=2))
        print(f"results in {a.out}")
    return results


if __name__ == "__main__":
    main()
