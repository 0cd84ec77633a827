"""GPU benchmarks, each printing ours next to the reference measured in the same run (same machine, same shapes):

* train: LoRA and full fine-tuning of a SmolLM2-135M-shaped model (random init), 50 optimizer steps on
  sequences of exactly --seq tokens (batch --batch), bf16 mixed precision on both sides (LoRA: bf16 base + fp32
  adapters; full: fp32 master weights), computing under bf16 autocast; plus full fine-tuning in plain fp32;
  `llmstudio train` vs transformers + PEFT + torch.optim.AdamW. Tokens/s over steps 6..50, peak memory.
* decode: greedy generation of --new tokens at batch 1 and 16 for SmolLM2-135M- and Llama-3.2-1B-shaped models in
  bf16, `llmstudio generate` vs transformers generate(). Tokens/s of the generation phase.

usage: python bench/bench_gpu.py --llms build-gpu/bin/llmstudio --tokenizer DIR_WITH_tokenizer.json --out results.json
"""
import argparse
import csv
import json
import pathlib
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

REPO = pathlib.Path(__file__).resolve().parents[1]
SHAPES = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, tie_word_embeddings=True, rope_theta=100000.0),
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, tie_word_embeddings=True, rope_theta=500000.0,
                         rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
}


def make_model(shape, vocab, out, tokenizer_dir):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, max_position_embeddings=8192, bos_token_id=0, eos_token_id=0, **SHAPES[shape])
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if (tokenizer_dir / f).exists():
            shutil.copy(tokenizer_dir / f, out / f)
    return cfg


def long_dataset(path, rows=600, seed=0):
    rnd = random.Random(seed)
    words = [w for w in (REPO / "examples" / "data" / "train.csv").read_text().split() if w.isalpha()]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "parent_id", "instruction", "output"])
        for i in range(rows):
            w.writerow([i, "", " ".join(rnd.choices(words, k=200)), " ".join(rnd.choices(words, k=400))])


def ours_train(llms, model_dir, data, out, lora, steps, batch, seq, mixed):
    name = ("lora" if lora else "full") + ("_mixed" if mixed else "_fp32")
    sets = [f"llm_backbone={model_dir}", f"output_directory={out}", f"experiment_name={name}",
            f"dataset.train_dataframe={data}", "dataset.validation_size=0.01", "dataset.parent_id_column=None",
            f"training.batch_size={batch}", f"tokenizer.max_length={seq}", "training.epochs=10",
            f"training.lora={'true' if lora else 'false'}", "training.lora_target_modules=q_proj,k_proj,v_proj,o_proj",
            "training.evaluation_epochs=100", "training.save_checkpoint=disable", "training.gradient_clip=0",
            f"architecture.backbone_dtype={'bfloat16' if lora else 'float32'}", "training.lora_dropout=0.0",
            f"environment.mixed_precision={'true' if mixed else 'false'}", "environment.mixed_precision_dtype=bfloat16",
            "architecture.gradient_checkpointing=false"]
    cmd = [str(llms), "train", "-c", str(REPO / "examples" / "cfg.yaml"), "--device", "cuda", "--max-steps", str(steps)]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    metrics = [json.loads(l) for l in (pathlib.Path(out) / name / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m["type"] == "train"]
    # Steady state: steps 6..N (the first ones include allocator warm-up).
    t5, tn = train[4]["elapsed_s"], train[-1]["elapsed_s"]
    tokens = batch * seq * (len(train) - 5)
    peak = next(m["peak_device_memory_gib"] for m in metrics if m["type"] == "summary")
    return {"tokens_per_s": tokens / (tn - t5), "peak_gib": peak, "last_loss": train[-1]["loss"]}


def ref_train(model_dir, lora, steps, batch, seq, vocab, mixed):
    from peft import LoraConfig, get_peft_model
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    dtype = torch.bfloat16 if lora else torch.float32
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").cuda()
    if lora:
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    g = torch.Generator().manual_seed(0)
    times = []
    for step in range(steps):
        ids = torch.randint(1, vocab, (batch, seq), generator=g).cuda()
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mixed):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    res = {"tokens_per_s": batch * seq * (steps - 5) / sum(times[5:]),
           "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
    del model, opt
    torch.cuda.empty_cache()
    return res


def ours_decode(llms, model_dir, batch, new, prompt_len, vocab, tmp):
    g = torch.Generator().manual_seed(1)
    prompts = torch.randint(1, vocab, (batch, prompt_len), generator=g).tolist()
    f = pathlib.Path(tmp) / f"prompts{batch}.json"
    f.write_text(json.dumps({"prompts": prompts}))
    args = [str(llms), "generate", "-m", str(model_dir), "--input-ids", str(f), "--max-new-tokens", str(new),
            "--eos-id", str(vocab + 10), "--device", "cuda", "--dtype", "bfloat16", "--warmup", "16"]
    # --warmup: an untimed generation in the same process first (lazy CUDA kernel loading, cuBLAS handles, the
    # allocator), as transformers gets its warm-up call below.
    proc = subprocess.run(args, check=True, capture_output=True, text=True)
    # The CLI reports the generation phase (model loading excluded): "N tokens in S s".
    m = re.search(r"(\d+) tokens in ([0-9.e+-]+) s", proc.stderr)
    if not m:
        raise RuntimeError(f"no timing line in llmstudio generate's stderr: {proc.stderr[-500:]}")
    n, secs = int(m.group(1)), float(m.group(2))
    return {"tokens_per_s": n / secs, "tokens": n, "seconds": secs}


def ref_decode(model_dir, batch, new, prompt_len, vocab):
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).cuda().eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, vocab, (batch, prompt_len), generator=g).cuda()
    kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        model.generate(ids, **kw)
        torch.cuda.synchronize()
        t = time.perf_counter()
        out = model.generate(ids, **kw)
        torch.cuda.synchronize()
        secs = time.perf_counter() - t
    n = (out.shape[1] - prompt_len) * batch
    del model
    torch.cuda.empty_cache()
    return {"tokens_per_s": n / secs, "tokens": n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llms", required=True)
    ap.add_argument("--tokenizer", required=True, type=pathlib.Path)
    ap.add_argument("--out", default="bench-gpu.json")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--only", default="train,decode")
    a = ap.parse_args()
    from tokenizers import Tokenizer
    vocab = Tokenizer.from_file(str(a.tokenizer / "tokenizer.json")).get_vocab_size()
    results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    tmp = pathlib.Path(tempfile.mkdtemp())
    if "train" in a.only:
        model_dir = tmp / "smollm2-135m"
        make_model("smollm2-135m", vocab, model_dir, a.tokenizer)
        data = tmp / "long.csv"
        long_dataset(data)
        for key, lora, mixed in (("train_lora_bf16_mixed", True, True), ("train_full_bf16_mixed", False, True),
                                 ("train_full_fp32", False, False)):
            ours = ours_train(a.llms, model_dir, data, tmp / "exp", lora, a.steps, a.batch, a.seq, mixed)
            ref = ref_train(model_dir, lora, a.steps, a.batch, a.seq, vocab, mixed)
            results[key] = {"ours": ours, "transformers_peft": ref, "ratio_tokens_per_s": ours["tokens_per_s"] / ref["tokens_per_s"]}
            print(key, json.dumps(results[key]), flush=True)
    if "decode" in a.only:
        for shape in SHAPES:
            model_dir = tmp / shape
            if not model_dir.exists():
                make_model(shape, vocab, model_dir, a.tokenizer)
            for batch in (1, 16):
                ours = ours_decode(a.llms, model_dir, batch, a.new, 32, vocab, tmp)
                ref = ref_decode(model_dir, batch, a.new, 32, vocab)
                key = f"decode_{shape}_batch{batch}"
                results[key] = {"ours": ours, "transformers": ref, "ratio": ours["tokens_per_s"] / ref["tokens_per_s"]}
                print(key, json.dumps(results[key]), flush=True)
    pathlib.Path(a.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
