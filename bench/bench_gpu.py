"""GPU benchmarks, each printing ours next to the reference measured in the same run (same machine, same shapes):

* train (issue 13): rows of ROWS below, each `llmstudio train` (a subprocess) vs transformers + PEFT +
  torch.optim.AdamW (attn_implementation="sdpa") in this process, on the same data (the same CSV rows, tokenized by
  the same tokenizer and prompt format) and the same number of optimizer steps; random-init models of the
  Llama-3.2-1B and SmolLM2-135M shapes with the --tokenizer's vocabulary (llama3: 128,256 tokens). bf16 mixed
  precision on both sides (LoRA: bf16 base + fp32 adapters; full: fp32 master weights), computing under bf16
  autocast. Every sample fills the sequence length exactly (no padding anywhere); packed rows pack samples of a
  quarter of the length four to a row. Tokens/s over steps 6..N (the first five include allocator warm-up and,
  for the compiled reference, compilation); tokens per step of both sides are printed and must agree. Peak
  memory: ours from metrics.jsonl's summary (the caching allocator's peak allocated bytes), the reference's from
  torch.cuda.max_memory_allocated() after reset_peak_memory_stats(); both include the weights.
  An extra reference column runs transformers + PEFT under torch.compile (--compile-ref, on by default; the error
  is recorded when compilation fails).
* decode (issue 14; bench/bench_decode.py, whose docstring says exactly what is measured): rows of
  bench_decode.ROWS, greedy generation of --new tokens at batch 1 / 16 / 64 and prompt lengths 32 / 2,000 for the
  SmolLM2-135M and Llama-3.2-1B shapes in bf16: `llmstudio generate` vs transformers generate() and vs the compiled
  transformers path (StaticCache + torch.compile(mode="reduce-overhead") of the one-token step): tokens/s,
  time to first token, percent of the HBM roofline (the bandwidth of a 4 GiB device-to-device copy measured in the
  same run), issue 14's targets PASS/FAIL. About 5-6 minutes on an H200 for the 12 default rows (--only decode).

usage: python bench/bench_gpu.py --llms build-gpu/bin/llmstudio --tokenizer DIR_WITH_tokenizer.json --out results.json
         [--rows 1b-lora-ckpt,135m-lora,decode-1b-b1-p32] [--steps N] [--no-compile-ref] [--profile ROW]
         [--only train|decode|train,decode] [--new N]
       --rows takes train and decode row names (decode rows start with "decode-"); 'default' and 'all' apply to both.
       smoke test of the whole train flow on CPU in about a minute (decode rows: --only decode, ~1.5 min, no compiled
       reference and no bandwidth probe on the CPU; tests/e2e/test_bench_decode_smoke.py):
       python bench/bench_gpu.py --llms build/bin/llmstudio --tokenizer ../shared/fixtures/tokenizers/gpt2 \
         --device cpu --tiny --out /tmp/tiny.json
"""
import argparse
import csv
import dataclasses
import datetime
import gc
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import bench_decode  # noqa: E402
SHAPES = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, tie_word_embeddings=True, rope_theta=100000.0),
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, tie_word_embeddings=True, rope_theta=500000.0,
                         rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    # --tiny: every row on this shape (smoke test of the flow, e.g. on CPU).
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, tie_word_embeddings=True, rope_theta=10000.0),
}
# H2O LLM Studio's default LoRA targets: every linear layer of the blocks.
LORA_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclasses.dataclass
class Row:
    shape: str
    lora: bool
    batch: int
    seq: int
    steps: int
    ckpt: bool = False       # gradient checkpointing on both sides
    packed: bool = False     # ours: training.packing; the reference: full-length rows of the same tokens per step
    mixed: bool = True       # bf16 autocast (False: plain fp32)
    ref_from: str = ""       # a row whose reference measurement is the same workload (reused when run)
    default: bool = True     # in the default row set
    warmup: int = 5          # tokens/s over steps warmup+1..N
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: tuple = tuple(LORA_ALL)


ROWS = {
    "1b-lora-ckpt": Row("llama-3.2-1b", True, 8, 1024, 30, ckpt=True),
    "1b-lora": Row("llama-3.2-1b", True, 8, 1024, 30),
    "1b-lora-ckpt-packed": Row("llama-3.2-1b", True, 8, 1024, 30, ckpt=True, packed=True, ref_from="1b-lora-ckpt"),
    "1b-lora-packed": Row("llama-3.2-1b", True, 8, 1024, 30, packed=True, ref_from="1b-lora"),
    "1b-full": Row("llama-3.2-1b", False, 4, 1024, 30),
    "135m-lora": Row("smollm2-135m", True, 8, 512, 50),
    "135m-full": Row("smollm2-135m", False, 8, 512, 50),
    "135m-full-fp32": Row("smollm2-135m", False, 8, 512, 50, mixed=False, default=False),
}
# Issue 13's targets: tokens/s ratio (ours / reference) and peak memory ratio (at most).
TARGETS = {"lora": (2.0, 0.70), "full": (1.4, 1.0)}


# ---- models and data ------------------------------------------------------------------------------------------------

def make_model(shape, vocab, out, tokenizer_dir, device="cpu"):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, max_position_embeddings=8192, bos_token_id=0, eos_token_id=0, **SHAPES[shape])
    with torch.device(device):  # random init on the GPU: seconds instead of a minute for the 1B shape
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if (tokenizer_dir / f).exists():
            shutil.copy(tokenizer_dir / f, out / f)
    del model
    return cfg


class PromptFormat:
    """Our prompt format for examples/cfg.yaml's markers (tokenizer/prompt_format.cpp, encode_with_markers + build):
    enc(<|prompt|> prompt EOS <|answer|>) cut to its last max_length tokens, then enc(answer EOS) cut to its first
    max_length, the whole cut to its last max_length; encoding adds no special tokens."""

    def __init__(self, tokenizer_dir):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        cfg_file = tokenizer_dir / "tokenizer_config.json"
        eos = json.loads(cfg_file.read_text()).get("eos_token") if cfg_file.exists() else None
        self.eos = eos["content"] if isinstance(eos, dict) else (eos or "")
        self.words = [w for w in (REPO / "examples" / "data" / "train.csv").read_text().split() if w.isalpha()]

    def enc(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def prompt_ids(self, prompt):
        return self.enc("<|prompt|>" + prompt + self.eos + "<|answer|>")

    def answer_ids(self, answer):
        return self.enc(answer + self.eos)

    def sample(self, prompt, answer, max_length):
        return (self.prompt_ids(prompt)[-max_length:] + self.answer_ids(answer)[:max_length])[-max_length:]


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "parent_id", "instruction", "output"])
        for i, (p, a) in enumerate(rows):
            w.writerow([i, "", p, a])


def full_length_dataset(fmt, path, n, seq, seed=0):
    """n rows whose answer alone is longer than seq tokens: every sample is exactly seq tokens (cut from the left).
    Returns the samples' token ids as the trainer builds them ([n, seq])."""
    rnd = random.Random(seed)
    rows, ids = [], []
    for _ in range(n):
        prompt = " ".join(rnd.choices(fmt.words, k=20))
        answer = " ".join(rnd.choices(fmt.words, k=seq + 64))  # >= 1 token per word
        rows.append((prompt, answer))
        s = fmt.sample(prompt, answer, seq)
        assert len(s) == seq, f"full-length sample has {len(s)} tokens, expected {seq}"
        ids.append(s)
    write_csv(path, rows)
    # A separate two-row validation file: the training file's rows all train (no hold-out breaking the batches).
    write_csv(pathlib.Path(path).parent / "validation.csv", rows[:2])
    return torch.tensor(ids, dtype=torch.long)


def quarter_length_dataset(fmt, path, n, seq, seed=1):
    """n rows (a multiple of 4) of exactly seq/4 tokens each after the prompt format: packing puts four to a row,
    every packed row full. The answer text is the decoding of a token prefix of the wanted length (checked by
    re-encoding; a draw that does not round-trip is redrawn)."""
    rnd = random.Random(seed)
    target, rows = seq // 4, []
    while len(rows) < n:
        prompt = " ".join(rnd.choices(fmt.words, k=8))
        need = target - len(fmt.prompt_ids(prompt)) - len(fmt.enc(fmt.eos))
        if need < 2:
            raise SystemExit(f"sequence length {seq} too short for packed rows of quarter-length samples")
        answer = fmt.tok.decode(fmt.enc(" ".join(rnd.choices(fmt.words, k=need + 8)))[:need]).strip()
        if len(fmt.prompt_ids(prompt)) + len(fmt.answer_ids(answer)) == target and "\n" not in answer:
            rows.append((prompt, answer))
    write_csv(path, rows)


# ---- ours ---------------------------------------------------------------------------------------------------------

def ours_train(llms, model_dir, data, out, name, row, device="cuda", env=None):
    """Runs `llmstudio train`; tokens/s over steps row.warmup+1..N, tokens per step, peak memory from metrics.jsonl."""
    sets = [f"llm_backbone={model_dir}", f"output_directory={out}", f"experiment_name={name}",
            f"dataset.train_dataframe={data}", "dataset.validation_strategy=custom",
            f"dataset.validation_dataframe={pathlib.Path(data).parent / 'validation.csv'}",
            "dataset.parent_id_column=None", "dataset.mask_prompt_labels=false",
            f"training.batch_size={row.batch}", f"tokenizer.max_length={row.seq}", "training.epochs=100",
            f"training.lora={'true' if row.lora else 'false'}", f"training.lora_r={row.lora_r}",
            f"training.lora_alpha={row.lora_alpha}", f"training.lora_target_modules={','.join(row.lora_targets)}",
            "training.lora_dropout=0.0", f"training.packing={'true' if row.packed else 'false'}",
            "training.evaluation_epochs=100", "training.save_checkpoint=disable", "training.gradient_clip=0",
            f"architecture.backbone_dtype={'bfloat16' if row.lora and row.mixed else 'float32'}",
            f"environment.mixed_precision={'true' if row.mixed else 'false'}",
            "environment.mixed_precision_dtype=bfloat16",
            f"architecture.gradient_checkpointing={'true' if row.ckpt else 'false'}"]
    if device == "cpu" and row.mixed and not row.lora:
        sets.append("environment.mixed_precision=false")  # CPU autocast needs a bf16 backbone: smoke test in fp32
    cmd = [str(llms), "train", "-c", str(REPO / "examples" / "cfg.yaml"), "--device", device,
           "--max-steps", str(row.steps)]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"llmstudio train failed ({proc.returncode}): {proc.stderr[-2000:]}")
    metrics = [json.loads(line) for line in (pathlib.Path(out) / name / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m["type"] == "train"]
    if len(train) < row.steps:
        raise RuntimeError(f"{name}: {len(train)} train steps logged, expected {row.steps}")
    # tokens_per_s * elapsed_s = tokens seen (non-padding tokens of the batches) up to that step.
    seen = [round(m["tokens_per_s"] * m["elapsed_s"]) for m in train]
    per_step = [b - a for a, b in zip([0] + seen, seen)]
    w = row.warmup
    tw, tn = train[w - 1]["elapsed_s"], train[-1]["elapsed_s"]
    peak = next((m["peak_device_memory_gib"] for m in metrics if m["type"] == "summary"), None)
    return {"tokens_per_s": (seen[-1] - seen[w - 1]) / (tn - tw), "tokens_per_step": per_step[w:],
            "step_s": (tn - tw) / (len(train) - w), "peak_gib": peak, "last_loss": train[-1]["loss"]}


# ---- reference ----------------------------------------------------------------------------------------------------

def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _free(device):
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def ref_train(model_dir, row, samples, device="cuda", compile=False):
    """transformers + PEFT + torch.optim.AdamW on batches of `samples` ([n, seq] token ids, cycled)."""
    from peft import LoraConfig, get_peft_model
    _free(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    dtype = torch.bfloat16 if row.lora and row.mixed else torch.float32
    model = opt = fwd = None
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(device)
    if row.ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if row.lora:
        if row.ckpt:
            model.enable_input_require_grads()
        model = get_peft_model(model, LoraConfig(r=row.lora_r, lora_alpha=row.lora_alpha, lora_dropout=0.0,
                                                 task_type="CAUSAL_LM", target_modules=list(row.lora_targets)))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    fwd = torch.compile(model) if compile else model
    mixed = row.mixed and (device == "cuda" or dtype == torch.bfloat16)
    times, losses = [], []
    try:
        for step in range(row.steps):
            idx = torch.arange(step * row.batch, (step + 1) * row.batch) % samples.shape[0]
            ids = samples[idx].to(device)
            _sync(device)
            t = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16, enabled=mixed):
                out = fwd(input_ids=ids, labels=ids)
            loss = out.loss
            del out  # the logits must not stay alive into the next step's forward
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            _sync(device)
            times.append(time.perf_counter() - t)
            losses.append(loss.detach())
            del loss
        tokens = row.batch * row.seq
        w = row.warmup
        res = {"tokens_per_s": tokens * (row.steps - w) / sum(times[w:]), "tokens_per_step": tokens,
               "step_s": sum(times[w:]) / (row.steps - w), "last_loss": float(losses[-1]),
               "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}
        if compile:
            res["first_step_s"] = times[0]  # includes compilation
    finally:
        del model, opt, fwd
        if compile:
            torch._dynamo.reset()
        _free(device)
    return res


def ref_train_compiled(model_dir, row, samples, device):
    try:
        return ref_train(model_dir, row, samples, device, compile=True)
    except Exception as e:  # noqa: BLE001 - recorded in the results instead
        msg = f"{type(e).__name__}: {e}".strip().splitlines()
        return {"error": (msg[0] if msg else type(e).__name__)[:500]}


# ---- the train rows -----------------------------------------------------------------------------------------------

def split_rows(spec):
    """--rows into (train names, decode names); None = that kind's default rows."""
    if spec in ("", "default"):
        return None, None
    if spec == "all":
        return list(ROWS), list(bench_decode.ROWS)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS and n not in bench_decode.ROWS]
    if unknown:
        raise SystemExit(f"--rows: unknown row(s) {unknown}; known: {', '.join(ROWS)}, "
                         f"{', '.join(bench_decode.ROWS)} (or 'all', 'default')")
    return [n for n in names if n in ROWS], [n for n in names if n in bench_decode.ROWS]


def select_rows(spec, tiny, steps):
    """Train rows: spec is --rows (a string) or a list of train row names."""
    names = spec if isinstance(spec, list) else split_rows(spec)[0]
    if names is None:
        names = [n for n, r in ROWS.items() if r.default]
    rows = {}
    for n in names:
        r = dataclasses.replace(ROWS[n])
        if tiny:
            r.shape, r.batch, r.seq, r.steps = "tiny", 2, 128, 8
        if steps:
            r.steps = steps
        if r.steps < 7:
            raise SystemExit(f"--steps {r.steps}: at least 7 (tokens/s is measured over steps 6..N)")
        rows[n] = r
    return rows


def judge(row, ours, ref):
    """Issue 13's targets for one row: (speed ratio, memory ratio, pass)."""
    ratio = ours["tokens_per_s"] / ref["tokens_per_s"]
    mem = ours["peak_gib"] / ref["peak_gib"] if ours.get("peak_gib") and ref.get("peak_gib") else None
    want_speed, want_mem = TARGETS["lora" if row.lora else "full"]
    ok = ratio >= want_speed and (mem is not None and mem <= want_mem)
    return ratio, mem, ok


class TrainBench:
    def __init__(self, a, vocab, tmp):
        self.a, self.vocab, self.tmp = a, vocab, tmp
        self.fmt = PromptFormat(a.tokenizer)
        self.models, self.data = {}, {}

    def model(self, shape):
        if shape not in self.models:
            d = self.tmp / f"model-{shape}"
            make_model(shape, self.vocab, d, self.a.tokenizer, self.a.device)
            self.models[shape] = d
        return self.models[shape]

    def dataset(self, row):
        """(csv for ours, [n, seq] samples for the reference: full-length rows, also for packed rows)."""
        key = (row.seq, row.batch, row.packed)
        if key not in self.data:
            n = row.batch * 32
            full_csv = self.tmp / f"full-{row.seq}-{row.batch}.csv"
            samples = full_length_dataset(self.fmt, full_csv, n, row.seq)
            csv_path = full_csv
            if row.packed:
                csv_path = self.tmp / f"packed-{row.seq}-{row.batch}.csv"
                quarter_length_dataset(self.fmt, csv_path, 4 * n, row.seq)
            self.data[key] = (csv_path, samples)
        return self.data[key]

    def run_row(self, name, row, results):
        model_dir = self.model(row.shape)
        csv_path, samples = self.dataset(row)
        ours = ours_train(self.a.llms, model_dir, csv_path, self.tmp / "exp", name, row, self.a.device)
        _free(self.a.device)
        if row.ref_from and "transformers_peft" in results.get(row.ref_from, {}):
            ref = results[row.ref_from]["transformers_peft"]
            compiled = results[row.ref_from].get("transformers_peft_compiled")
        else:
            ref = ref_train(model_dir, row, samples, self.a.device)
            compiled = ref_train_compiled(model_dir, row, samples, self.a.device) if self.a.compile_ref else None
        ratio, mem, ok = judge(row, ours, ref)
        res = {"config": dataclasses.asdict(row), "ours": ours, "transformers_peft": ref,
               "ratio_tokens_per_s": ratio, "ratio_peak_memory": mem, "meets_targets": ok,
               "tokens_per_step_equal": all(t == ref["tokens_per_step"] for t in ours["tokens_per_step"])}
        if compiled is not None:
            res["transformers_peft_compiled"] = compiled
            if "tokens_per_s" in compiled:
                res["ratio_vs_compiled"] = ours["tokens_per_s"] / compiled["tokens_per_s"]
        if row.packed:
            res["note"] = ("ours packs 4 samples of seq/4 tokens per row (training.packing, block-diagonal causal "
                           "attention); the reference (transformers + sdpa has no packed attention) runs the same "
                           "tokens per step as full-length rows" +
                           (f" (its measurement is row {row.ref_from}'s, the same workload)" if "transformers_peft" in
                               results.get(row.ref_from, {}) else ""))
        toks = sorted(set(ours["tokens_per_step"]))
        print(f"{name}: tokens/step ours {toks} reference {ref['tokens_per_step']}"
              f"{'' if res['tokens_per_step_equal'] else '  MISMATCH'}", flush=True)
        return res

    def profile(self, name, row, out_dir):
        """Runs `name` once more with LLMS_PROFILE_STEPS/LLMS_PROFILE_OUT set; writes the trace (gzip) and the per-op
        summary next to --out."""
        import gzip
        import profile_summary
        a0 = min(9, row.steps - 4)
        b0 = min(a0 + 3, row.steps - 1)
        trace = self.tmp / f"trace-{name}.json"
        env = {"LLMS_PROFILE_STEPS": f"{a0}:{b0}", "LLMS_PROFILE_OUT": str(trace)}
        csv_path, _ = self.dataset(row)
        ours_train(self.a.llms, self.model(row.shape), csv_path, self.tmp / "exp", name + "-profile", row,
                   self.a.device, env)
        summary = out_dir / f"profile-{name}.txt"
        if not trace.exists():
            summary.write_text(f"no trace written at {trace}: does this llmstudio honour LLMS_PROFILE_STEPS?\n")
        else:
            with open(trace, "rb") as f, gzip.open(out_dir / f"trace-{name}.json.gz", "wb") as g:
                shutil.copyfileobj(f, g)
            summary.write_text(profile_summary.summarize(profile_summary.load(trace), steps=b0 - a0))
        print(summary.read_text(), flush=True)
        return str(summary)


def fmt_num(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def print_table(rows):
    head = (f"{'row':<22}{'ours tok/s':>11}{'ref tok/s':>11}{'ratio':>7}{'compiled':>11}{'vs comp':>8}"
            f"{'peak ours/ref GiB':>19}{'mem':>6}  target")
    print(head)
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:<22}ERROR {r['error'].splitlines()[0][:150]}")
            continue
        o, ref, c = r["ours"], r["transformers_peft"], r.get("transformers_peft_compiled") or {}
        comp = c.get("tokens_per_s", "error" if "error" in c else None)
        want = TARGETS["lora" if r["config"]["lora"] else "full"]
        peaks = f"{fmt_num(o['peak_gib'], '.1f')}/{fmt_num(ref['peak_gib'], '.1f')}"
        print(f"{name:<22}{o['tokens_per_s']:>11.0f}{ref['tokens_per_s']:>11.0f}{r['ratio_tokens_per_s']:>6.2f}x"
              f"{comp if isinstance(comp, str) else fmt_num(comp, '.0f'):>11}"
              f"{fmt_num(r.get('ratio_vs_compiled'), '.2f') + ('x' if r.get('ratio_vs_compiled') else ''):>8}{peaks:>19}{fmt_num(r['ratio_peak_memory'], '.2f'):>6}"
              f"  {'PASS' if r['meets_targets'] else 'FAIL'} (>= {want[0]}x, mem <= {want[1]:.0%})"
              f"{'' if r['tokens_per_step_equal'] else '  TOKENS/STEP DIFFER'}")
    errs = {n: r["transformers_peft_compiled"]["error"] for n, r in rows.items()
            if "error" in (r.get("transformers_peft_compiled") or {})}
    for n, e in errs.items():
        print(f"  {n}: torch.compile reference failed: {e}")


def git_commit():
    """HEAD of the checkout, else $LLMS_GIT_COMMIT (a copy without .git, e.g. on the device machine)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        head = ""
    return head or os.environ.get("LLMS_GIT_COMMIT")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llms", required=True)
    ap.add_argument("--tokenizer", required=True, type=pathlib.Path)
    ap.add_argument("--out", default="bench-gpu.json", type=pathlib.Path)
    ap.add_argument("--rows", default="default", help=f"comma-separated from {', '.join(ROWS)}, "
                    f"{', '.join(bench_decode.ROWS)}; 'all'; 'default'")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps of every row (default: the row's)")
    ap.add_argument("--compile-ref", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure transformers + PEFT under torch.compile (train rows) and the compiled "
                    "static-cache decode path (decode rows with compiled=True, CUDA only)")
    ap.add_argument("--profile", default="", help="a row to run once more under LLMS_PROFILE_STEPS (summary to --out's folder)")
    ap.add_argument("--new", type=int, default=128, help="decode rows: new tokens per prompt (--tiny: at most 8)")
    ap.add_argument("--only", default="train,decode", help="train, decode or train,decode")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # cpu: smoke test of the flow
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # every row on the tiny shape
    a = ap.parse_args(argv)
    from tokenizers import Tokenizer
    import peft
    import transformers
    vocab = Tokenizer.from_file(str(a.tokenizer / "tokenizer.json")).get_vocab_size()
    results = {"gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu", "torch": torch.__version__,
               "transformers": transformers.__version__, "peft": peft.__version__,
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "git_commit": git_commit(), "tokenizer": a.tokenizer.name, "vocab_size": vocab, "rows": {}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    train_names, decode_names = split_rows(a.rows)
    save = lambda: a.out.write_text(json.dumps(results, indent=2))  # noqa: E731 - partial results survive a time-out
    try:
        if "train" in a.only and train_names != []:
            bench = TrainBench(a, vocab, tmp)
            rows = select_rows(train_names, a.tiny, a.steps)
            for name, row in rows.items():
                t = time.perf_counter()
                try:
                    results["rows"][name] = bench.run_row(name, row, results["rows"])
                except Exception as e:  # noqa: BLE001 - one failing row must not lose the others
                    results["rows"][name] = {"config": dataclasses.asdict(row), "error": f"{type(e).__name__}: {e}"[-2000:]}
                    _free(a.device)
                print(name, json.dumps(results["rows"][name]), f"({time.perf_counter() - t:.0f} s)", flush=True)
                save()
            if a.profile:
                prow = rows.get(a.profile) or select_rows(a.profile, a.tiny, a.steps)[a.profile]
                results["profile"] = {a.profile: bench.profile(a.profile, prow, a.out.parent)}
        if "decode" in a.only and decode_names != []:
            _free(a.device)
            bench_decode.DecodeBench(a, vocab, tmp, make_model).run(
                bench_decode.select_rows(decode_names, a.tiny), results, save)
        save()
        if results["rows"]:
            print(f"\ntrain: {results['gpu']}, torch {results['torch']}, transformers {results['transformers']}, "
                  f"peft {results['peft']}, vocabulary {vocab}; results in {a.out}")
            print_table(results["rows"])
        if results.get("decode"):
            bench_decode.print_table(results["decode"], results.get("hbm"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
