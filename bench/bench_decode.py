"""Decode rows of bench/bench_gpu.py (issue 14): greedy generation of --new tokens (default 128) from random-token
prompts (the same ids on every side), bf16 on CUDA (fp32 in the CPU smoke test), models of the SmolLM2-135M and
Llama-3.2-1B shapes (random init, the --tokenizer's vocabulary), at batch 1 / 16 / 64 and prompt lengths 32 / 2,000.

Per row, three sides, each after a warm-up in the same process:
* ours: `llmstudio generate --input-ids` (a subprocess, twice). Tokens/s: --max-new-tokens N --warmup 16, from the
  CLI's timing line "T tokens in S s" (the timed generate() call after the warm-up; model loading excluded, the
  prefill included). TTFT: the CLI has no first-token timing or --json timing output (apps/llmstudio/
  cmd_generate.cpp prints only that line), so a second invocation with --max-new-tokens 1 --warmup 1 times a
  generate() of one token: S of its timing line is the prefill, the first token's choice and its copy to the host
  (generate() never runs a decode step for one token), i.e. the time to first token with the model loaded.
* transformers: `generate()` (dynamic cache, sdpa), as a user calls it. Tokens/s of a generate() of N tokens after a
  16-token warm-up; TTFT: a 1-token generate() after a 1-token warm-up, timed with CUDA synchronize.
* transformers, compiled (the fastest stock path, gpt-fast style): a StaticCache of prompt + N positions, the
  prefill eager, then a one-token step (forward + argmax on the device) under torch.compile(mode="reduce-overhead",
  fullgraph=True), i.e. replayed as a CUDA graph, no host sync until the last token. Measured after two warm-up
  passes (compilation and graph recording; their time is "compile_s"). If that fails, transformers' own static-cache
  path, generate(cache_implementation="static", compile_config=CompileConfig(mode="reduce-overhead")), and both
  errors are recorded. Only on CUDA and for rows with compiled=True (--no-compile-ref: none); it costs a compilation
  per row (~30-90 s).

The HBM roofline: the bandwidth of a 4 GiB device-to-device copy (bytes read + written / time, CUDA events, the best
of 10) measured in the same run. A decode step reads every weight once whatever the batch, so a row's roofline
percentage is weight bytes x (tokens/s / batch) / bandwidth (at batch 1 exactly the issue's weight bytes x tokens/s /
bandwidth); "roofline_pct_with_kv" adds the KV cache a step must read at the mean context (prompt + N/2).
Tokens/s everywhere is new tokens / time of the whole generation call (prefill included, as the issue's table);
"decode_tokens_per_s" leaves the TTFT out: batch x (N - 1) / (seconds - ttft_s).

Issue 14's targets (the T_* checks in ROWS below): 1B batch 1 >= 50% of the roofline and >= 1.8x the compiled path; 135M batch 1
>= 1,500 tokens/s; batch 16 >= 4x transformers generate for both shapes; TTFT of a 2,000-token prompt on the 1B
shape below transformers'. Rows without a target print "-".

Duration on one H200 (estimate, --only decode, all 12 default rows): model creation ~15 s, bandwidth ~2 s, ours
~8 s per row (two processes), transformers ~5 s per row, the two compiled rows ~60-90 s each: about 5-6 minutes
(plus ~80 s for the build in scripts/gpu-bench.sh). Rows run in the order below: the five rows with targets, then
the compiled references, then the rows without targets (~4 minutes to the last target number); the JSON is
rewritten after every measurement, so a time-out keeps the finished ones.
"""
import dataclasses
import inspect
import json
import math
import pathlib
import re
import statistics
import struct
import subprocess
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

# (metric, operator, value, label). Metrics: a row's fields (see judge()).
T_ROOF = ("ours_roofline_pct", ">=", 50.0, "roofline >= 50%")
T_COMP = ("ratio_vs_compiled", ">=", 1.8, ">= 1.8x compiled")
T_GEN4 = ("ratio", ">=", 4.0, ">= 4x generate")
T_135M = ("ours_tokens_per_s", ">=", 1500.0, ">= 1500 tok/s")
T_TTFT = ("ttft_ratio", "<", 1.0, "TTFT < generate's")


@dataclasses.dataclass
class DecodeRow:
    shape: str
    batch: int
    prompt: int
    compiled: bool = False   # also the compiled transformers path (CUDA only)
    targets: tuple = ()
    default: bool = True


ROWS = {
    "decode-1b-b1-p32": DecodeRow("llama-3.2-1b", 1, 32, compiled=True, targets=(T_ROOF, T_COMP)),
    "decode-135m-b1-p32": DecodeRow("smollm2-135m", 1, 32, compiled=True, targets=(T_135M,)),
    "decode-1b-b16-p32": DecodeRow("llama-3.2-1b", 16, 32, targets=(T_GEN4,)),
    "decode-135m-b16-p32": DecodeRow("smollm2-135m", 16, 32, targets=(T_GEN4,)),
    "decode-1b-b1-p2000": DecodeRow("llama-3.2-1b", 1, 2000, targets=(T_TTFT,)),
    "decode-1b-b64-p32": DecodeRow("llama-3.2-1b", 64, 32),
    "decode-135m-b64-p32": DecodeRow("smollm2-135m", 64, 32),
    "decode-1b-b16-p2000": DecodeRow("llama-3.2-1b", 16, 2000),
    "decode-1b-b64-p2000": DecodeRow("llama-3.2-1b", 64, 2000),
    "decode-135m-b1-p2000": DecodeRow("smollm2-135m", 1, 2000),
    "decode-135m-b16-p2000": DecodeRow("smollm2-135m", 16, 2000),
    "decode-135m-b64-p2000": DecodeRow("smollm2-135m", 64, 2000),
}
WARMUP_TOKENS = 16


def select_rows(names, tiny):
    """names: decode row names (None: the default rows). --tiny: the tiny shape, batch / 8, prompts of at most 48."""
    rows = {}
    for n in names if names is not None else [n for n, r in ROWS.items() if r.default]:
        r = dataclasses.replace(ROWS[n])
        if tiny:
            r.shape, r.batch, r.prompt = "tiny", max(1, r.batch // 8), min(r.prompt, 48)
        rows[n] = r
    return rows


# ---- measurements shared by the rows ------------------------------------------------------------------------------

def hbm_bandwidth(gib=4, reps=10):
    """Device-to-device copy of a `gib` GiB buffer: bytes read + written / time (CUDA events); GB/s = 1e9 B/s."""
    n = gib * 2**30
    src = torch.ones(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(2):
        dst.copy_(src)
    secs = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        secs.append(start.elapsed_time(end) / 1e3)
    del src, dst
    torch.cuda.empty_cache()
    gbps = [2 * n / s / 1e9 for s in secs]
    return {"copy_bytes": n, "reps": reps, "gbps_best": max(gbps), "gbps_median": statistics.median(gbps),
            "gbps": max(gbps), "method": f"{gib} GiB device-to-device copy_, (read + write) / time, best of {reps}"}


def weight_bytes(model_dir, itemsize):
    """Parameter count from the safetensors headers (tied weights are stored once) x bytes per element."""
    numel = 0
    for f in sorted(pathlib.Path(model_dir).glob("*.safetensors")):
        with open(f, "rb") as fh:
            header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        numel += sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    return numel * itemsize


def kv_bytes_per_step(cfg, batch, context, itemsize):
    """Keys + values one decode step reads at `context` cached positions."""
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * itemsize * batch * context


def prompts_for(batch, prompt_len, vocab):
    g = torch.Generator().manual_seed(1)
    return torch.randint(1, vocab, (batch, prompt_len), generator=g)


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device):
    _sync(device)
    t = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t


def _error(e):
    lines = f"{type(e).__name__}: {e}".strip().splitlines()
    return " | ".join(lines[:3])[:1000]


# ---- ours ---------------------------------------------------------------------------------------------------------

def _llms_generate(llms, model_dir, prompts_file, new, warmup, eos, device, dtype):
    """One `llmstudio generate` process; (tokens, seconds) of its timed generate() call, from its timing line."""
    args = [str(llms), "generate", "-m", str(model_dir), "--input-ids", str(prompts_file), "--max-new-tokens",
            str(new), "--eos-id", str(eos), "--device", device, "--dtype", dtype, "--warmup", str(warmup)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"llmstudio generate failed ({proc.returncode}): {proc.stderr[-1500:]}")
    m = re.search(r"(\d+) tokens in ([0-9.e+-]+) s", proc.stderr)
    if not m:
        raise RuntimeError(f"no timing line in llmstudio generate's stderr: {proc.stderr[-500:]}")
    return int(m.group(1)), float(m.group(2))


def ours_decode(llms, model_dir, ids, new, vocab, device, dtype, tmp):
    """Tokens/s and TTFT of `llmstudio generate` (see the module docstring: two processes)."""
    f = pathlib.Path(tmp) / f"prompts-{ids.shape[0]}x{ids.shape[1]}.json"
    f.write_text(json.dumps({"prompts": ids.tolist()}))
    eos = vocab + 10  # outside the vocabulary: every row makes exactly `new` tokens (transformers: min_new_tokens)
    n, secs = _llms_generate(llms, model_dir, f, new, min(WARMUP_TOKENS, new), eos, device, dtype)
    if n != ids.shape[0] * new:
        raise RuntimeError(f"llmstudio generate made {n} tokens, expected {ids.shape[0]} x {new}")
    _, ttft = _llms_generate(llms, model_dir, f, 1, 1, eos, device, dtype)
    return {"tokens_per_s": n / secs, "tokens": n, "seconds": secs, "ttft_s": ttft}


# ---- transformers -------------------------------------------------------------------------------------------------

def ref_decode(model, ids, new, device):
    """transformers generate(): tokens/s of N tokens after a 16-token warm-up, TTFT of a 1-token call; the tokens."""
    kw = dict(do_sample=False, eos_token_id=None, pad_token_id=0)

    def gen(n):
        return model.generate(ids, max_new_tokens=n, min_new_tokens=n, **kw)

    with torch.no_grad():
        gen(min(WARMUP_TOKENS, new))
        out, secs = _timed(lambda: gen(new), device)
        gen(1)
        _, ttft = _timed(lambda: gen(1), device)
    new_ids = out[:, ids.shape[1]:]
    n = new_ids.numel()
    return {"tokens_per_s": n / secs, "tokens": n, "seconds": secs, "ttft_s": ttft}, new_ids


def cache_kwarg(model):
    """The forward's cache argument: `cache` since transformers 5.2x, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class StaticDecoder:
    """gpt-fast-style greedy decoding with stock transformers: a StaticCache (fixed addresses), the prefill eager,
    then one-token steps through `step` (torch.compile(mode="reduce-overhead") of forward + argmax when compile_kw is
    given: a CUDA graph replay per token), positions kept on the device, no host sync until the end."""

    def __init__(self, model, max_len, compile_kw=None):
        from transformers import StaticCache
        self.model, self.kw = model, cache_kwarg(model)
        self.cache = StaticCache(config=model.config, max_cache_len=max_len)
        self.cuda_graphs = compile_kw is not None and compile_kw.get("mode") == "reduce-overhead"
        self.step = torch.compile(self._step, **compile_kw) if compile_kw is not None else self._step

    def _logits(self, ids, pos):
        out = self.model(input_ids=ids, position_ids=pos, use_cache=True, logits_to_keep=1, **{self.kw: self.cache})
        return out.logits[:, -1]

    def _step(self, tok, pos):
        return self._logits(tok, pos).argmax(-1, keepdim=True)

    @torch.no_grad()
    def generate(self, ids, new):
        """[B, new] greedy tokens. The cache is reset in place (its addresses stay, the graph stays valid)."""
        self.cache.reset()
        B, P = ids.shape
        pos = torch.arange(P, device=ids.device).expand(B, P)
        tok = self._logits(ids, pos).argmax(-1, keepdim=True)
        out = [tok]
        pos = torch.full((B, 1), P, dtype=torch.long, device=ids.device)
        for _ in range(new - 1):
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            tok = self.step(tok, pos).clone()  # a graph's output is overwritten by its next replay
            out.append(tok)
            pos += 1
        return torch.cat(out, 1)


def _static_measure(gen, ids, new, device):
    """Two warm-up passes (compilation, graph recording), the TTFT of a 1-token call, then N tokens timed."""
    _, warm = _timed(lambda: (gen(ids, min(8, new)), gen(ids, min(8, new))), device)
    _, ttft = _timed(lambda: gen(ids, 1), device)
    out, secs = _timed(lambda: gen(ids, new), device)
    if out.shape[1] != new:
        raise RuntimeError(f"{out.shape[1]} new tokens per row, expected {new}")
    n = out.shape[0] * new
    return {"tokens_per_s": n / secs, "tokens": n, "seconds": secs, "ttft_s": ttft, "compile_s": warm}, out


COMPILE_KW = dict(mode="reduce-overhead", fullgraph=True, dynamic=False)
COMPILED_DEVICES = ("cuda",)  # the test of the flow adds "cpu" with COMPILE_KW's backend="eager"


def compiled_decode(model, ids, new, device, compile_kw=None):
    """The fastest stock transformers path (see the module docstring): (measurement, [B, new] tokens), or
    ({"error": ...}, None) when both ways fail. compile_kw: torch.compile's arguments (tests: backend="eager")."""
    errors, compile_kw = {}, compile_kw or COMPILE_KW
    try:
        dec = StaticDecoder(model, ids.shape[1] + new, compile_kw)
        res, out = _static_measure(dec.generate, ids, new, device)
        res["method"] = f"StaticCache + torch.compile({compile_kw}) of the one-token step (forward + argmax)"
        return res, out
    except Exception as e:  # noqa: BLE001 - recorded, then the generate() path is tried
        errors["static_step"] = _error(e)
    finally:
        dec = None
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    try:
        from transformers import CompileConfig
        # max_cache_len: one cache (and one compiled graph) for the warm-up, 1-token and N-token calls
        kw = dict(do_sample=False, eos_token_id=None, pad_token_id=0, cache_implementation="static",
                  max_cache_len=ids.shape[1] + new, compile_config=CompileConfig(mode="reduce-overhead"))

        def gen(x, n):
            with torch.no_grad():
                return model.generate(x, max_new_tokens=n, min_new_tokens=n, **kw)[:, x.shape[1]:]

        res, out = _static_measure(gen, ids, new, device)
        res["method"] = "generate(cache_implementation='static', compile_config=CompileConfig(mode='reduce-overhead'))"
        res["errors"] = errors
        return res, out
    except Exception as e:  # noqa: BLE001
        errors["generate_static"] = _error(e)
        return {"error": "; ".join(f"{k}: {v}" for k, v in errors.items()), "errors": errors}, None
    finally:
        torch._dynamo.reset()
        torch.cuda.empty_cache()


def matching_prefix(a, b):
    """The shortest common prefix over the rows of two [B, N] token tensors (N when identical)."""
    same = (a.cpu() == b.cpu()).int().cumprod(1).sum(1)
    return int(same.min())


# ---- rows ---------------------------------------------------------------------------------------------------------

def add_derived(side, row, new, wbytes, kv_bytes, gbps):
    """decode_tokens_per_s and the roofline percentages of one side's measurement (in place)."""
    if "tokens_per_s" not in side:
        return
    if side.get("ttft_s") is not None and side["seconds"] > side["ttft_s"] and new > 1:
        side["decode_tokens_per_s"] = row.batch * (new - 1) / (side["seconds"] - side["ttft_s"])
    if gbps:
        steps_per_s = side["tokens_per_s"] / row.batch
        side["roofline_pct"] = 100.0 * wbytes * steps_per_s / (gbps * 1e9)
        side["roofline_pct_with_kv"] = 100.0 * (wbytes + kv_bytes) * steps_per_s / (gbps * 1e9)


def judge(res, targets):
    """Checks the row's targets; fills res["targets"] and returns pass (None: no target for this row)."""
    ours = res.get("ours", {})
    metrics = {"ours_tokens_per_s": ours.get("tokens_per_s"), "ours_roofline_pct": ours.get("roofline_pct"),
               "ratio": res.get("ratio"), "ratio_vs_compiled": res.get("ratio_vs_compiled"),
               "ttft_ratio": res.get("ttft_ratio")}
    checks = []
    for metric, op, value, label in targets:
        found = metrics[metric]
        ok = found is not None and (found >= value if op == ">=" else found < value)
        checks.append({"metric": metric, "op": op, "value": value, "label": label, "found": found, "pass": ok})
    res["targets"] = checks
    return all(c["pass"] for c in checks) if checks else None


class DecodeBench:
    """The decode part: the bandwidth probe, every row's `llmstudio generate` and transformers generate(), and the
    compiled path for the rows that want it, measured once the rows with targets are done (the compilations are the
    slowest part; rows without targets come after them)."""

    def __init__(self, a, vocab, tmp, make_model):
        self.a, self.vocab, self.tmp, self.make_model = a, vocab, pathlib.Path(tmp), make_model
        self.device = a.device
        self.dtype = torch.bfloat16 if self.device == "cuda" else torch.float32  # CPU: the fp32 smoke test
        self.new = a.new if not a.tiny else min(a.new, 8)
        self.refs, self.gen_tokens = {}, {}
        self.hbm = None

    def model_dir(self, shape):
        d = self.tmp / f"model-{shape}"
        if not (d / "config.json").exists():
            self.make_model(shape, self.vocab, d, self.a.tokenizer, self.a.device)
        return d

    def ref_model(self, shape):
        """transformers models stay loaded for the whole decode part (both shapes: ~3 GB of an H200's memory)."""
        if shape not in self.refs:
            self.refs[shape] = LlamaForCausalLM.from_pretrained(self.model_dir(shape), dtype=self.dtype).to(
                self.device).eval()
        return self.refs[shape]

    def bandwidth(self):
        if self.device != "cuda":
            self.hbm = {"skipped": "no HBM roofline on the CPU"}
        else:
            try:
                self.hbm = hbm_bandwidth()
            except Exception as e:  # noqa: BLE001 - rows are still measured, without roofline percentages
                self.hbm = {"error": _error(e)}
                torch.cuda.empty_cache()
        return self.hbm

    def measure(self, name, row):
        """ours and transformers generate() for one row (each side's failure is recorded, the other still runs)."""
        d = self.model_dir(row.shape)
        itemsize = torch.tensor([], dtype=self.dtype).element_size()
        config = {k: v for k, v in dataclasses.asdict(row).items() if k not in ("targets", "default")}
        res = {"config": {**config, "new": self.new, "device": self.device, "dtype": str(self.dtype)[6:]},
               "weight_bytes": weight_bytes(d, itemsize),
               "kv_bytes_per_step_mean": kv_bytes_per_step(LlamaConfig.from_pretrained(d), row.batch,
                                                           row.prompt + self.new // 2, itemsize)}
        ids = prompts_for(row.batch, row.prompt, self.vocab)
        if self.device == "cuda":
            torch.cuda.empty_cache()  # the allocator's cached blocks back to the device for the subprocess
        try:
            res["ours"] = ours_decode(self.a.llms, d, ids, self.new, self.vocab, self.device,
                                      "bfloat16" if self.dtype == torch.bfloat16 else "float32", self.tmp)
        except Exception as e:  # noqa: BLE001 - the references are still measured
            res["ours"] = {"error": _error(e)}
        try:
            res["transformers"], self.gen_tokens[name] = ref_decode(self.ref_model(row.shape), ids.to(self.device),
                                                                    self.new, self.device)
        except Exception as e:  # noqa: BLE001
            res["transformers"] = {"error": _error(e)}
        if not row.compiled:
            res["transformers_compiled"] = {"skipped": "not measured for this row (compiled=False)"}
        elif self.device not in COMPILED_DEVICES:
            res["transformers_compiled"] = {"skipped": "CUDA only (torch.compile with CUDA graphs)"}
        elif not self.a.compile_ref:
            res["transformers_compiled"] = {"skipped": "--no-compile-ref"}
        else:
            res["transformers_compiled"] = {"pending": "measured after the other rows"}
        return self.finish(res, row)

    def measure_compiled(self, res, row, name):
        ids = prompts_for(row.batch, row.prompt, self.vocab).to(self.device)
        comp, tokens = compiled_decode(self.ref_model(row.shape), ids, self.new, self.device)
        if tokens is not None and name in self.gen_tokens:
            # bf16 on a random-init model: near-tied logits may flip under other kernels; information only.
            comp["matching_prefix_vs_generate"] = matching_prefix(tokens, self.gen_tokens[name])
        res["transformers_compiled"] = comp
        return self.finish(res, row)

    def finish(self, res, row):
        """Derived fields (decode tokens/s, roofline %, ratios) and the targets."""
        gbps = (self.hbm or {}).get("gbps")
        for side in ("ours", "transformers", "transformers_compiled"):
            add_derived(res[side], row, self.new, res["weight_bytes"], res["kv_bytes_per_step_mean"], gbps)
        o, g, c = res["ours"], res["transformers"], res["transformers_compiled"]
        for key, num, den in (("ratio", o, g), ("ratio_vs_compiled", o, c)):
            res.pop(key, None)
            if "tokens_per_s" in num and "tokens_per_s" in den:
                res[key] = num["tokens_per_s"] / den["tokens_per_s"]
        if o.get("ttft_s") and g.get("ttft_s"):
            res["ttft_ratio"] = o["ttft_s"] / g["ttft_s"]
        res["meets_targets"] = judge(res, row.targets)
        return res

    def run(self, rows, results, save):
        """Measures `rows` into results["decode"], calling save() after each measurement."""
        results["hbm"] = self.bandwidth()
        print("hbm", json.dumps(results["hbm"]), flush=True)
        out = results.setdefault("decode", {})

        def report(name, t):
            print(name, json.dumps(out[name]), f"({time.perf_counter() - t:.0f} s)", flush=True)
            save()

        def compiled_pending():
            for name, row in rows.items():
                if name in out and "pending" in (out[name].get("transformers_compiled") or {}):
                    t = time.perf_counter()
                    try:
                        self.measure_compiled(out[name], row, name)
                    except Exception as e:  # noqa: BLE001
                        out[name]["transformers_compiled"] = {"error": _error(e)}
                    report(name, t)

        for name, row in rows.items():
            if not row.targets:
                compiled_pending()  # every target's numbers first: a time-out loses only the extra rows
            t = time.perf_counter()
            try:
                out[name] = self.measure(name, row)
            except Exception as e:  # noqa: BLE001 - one failing row must not lose the others
                out[name] = {"config": dataclasses.asdict(row), "error": _error(e)}
            report(name, t)
        compiled_pending()
        self.refs.clear()
        if self.device == "cuda":
            torch.cuda.empty_cache()


# ---- table --------------------------------------------------------------------------------------------------------

def _f(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def _side(r, key, field, spec, scale=1.0):
    s = r.get(key) or {}
    if "error" in s:
        return "err"
    return _f(s[field] * scale, spec) if isinstance(s.get(field), (int, float)) else "-"


def print_table(rows, hbm):
    bw = (hbm or {}).get("gbps")
    dtype = next((r["config"].get("dtype") for r in rows.values() if "dtype" in r.get("config", {})), "?")
    print(f"\ndecode: greedy, {dtype}; HBM bandwidth {_f(bw, '.0f')} GB/s "
          f"({(hbm or {}).get('method') or (hbm or {}).get('skipped') or (hbm or {}).get('error')}); "
          "roofline % = weight bytes x tokens/s / batch / bandwidth")
    print(f"{'row':<23}{'ours':>8}{'generate':>9}{'ratio':>7}{'compiled':>9}{'vs comp':>8}"
          f"{'roofline % o/g/c':>18}{'TTFT ms o/g/c':>20}  target")
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:<23}ERROR {r['error'][:150]}")
            continue
        roof = "/".join(_side(r, k, "roofline_pct", ".1f") for k in ("ours", "transformers", "transformers_compiled"))
        ttft = "/".join(_side(r, k, "ttft_s", ".1f", 1e3) for k in ("ours", "transformers", "transformers_compiled"))
        ok = r.get("meets_targets")
        verdict = "-" if ok is None else ("PASS" if ok else "FAIL")
        labels = ", ".join(f"{t['label']}: {_f(t['found'], '.3g')}" for t in r.get("targets", []))
        print(f"{name:<23}{_side(r, 'ours', 'tokens_per_s', '.0f'):>8}{_side(r, 'transformers', 'tokens_per_s', '.0f'):>9}"
              f"{_f(r.get('ratio'), '.2f') + ('x' if 'ratio' in r else ''):>7}"
              f"{_side(r, 'transformers_compiled', 'tokens_per_s', '.0f'):>9}"
              f"{_f(r.get('ratio_vs_compiled'), '.2f') + ('x' if 'ratio_vs_compiled' in r else ''):>8}"
              f"{roof:>18}{ttft:>20}  {verdict}{f' ({labels})' if labels else ''}")
    for name, r in rows.items():
        for key in ("ours", "transformers", "transformers_compiled"):
            if "error" in (r.get(key) or {}):
                print(f"  {name} {key}: {r[key]['error'][:300]}")
        for k, e in ((r.get("transformers_compiled") or {}).get("errors") or {}).items():
            print(f"  {name} transformers_compiled ({k} failed, fell back): {e[:300]}")
