#!/usr/bin/env bash
# Device-machine run of the benchmarks (issue 13: training, issue 14: decoding): builds build-gpu/bin/llmstudio as
# scripts/gpu-check.sh does (configure + the CLI target only, no parity tests), then bench/bench_gpu.py's rows, ours
# vs transformers in the same run. Train rows: `llmstudio train` vs transformers + PEFT (and under torch.compile).
# Decode rows (bench/bench_decode.py): `llmstudio generate` vs transformers generate() and the compiled static-cache
# path, tokens/s, TTFT, % of the HBM roofline (copy bandwidth measured in the same run), issue 14's targets.
# Writes under $OUT (or ./gpu-out): machine.txt, configure/build logs, <gpu>-bench-<train|decode|train-decode>-<date>.json
# (copy it to docs/verified/), bench.log, and with --profile ROW in BENCH_ARGS profile-ROW.txt + trace-ROW.json.gz.
# Needs .device/llama3/{tokenizer.json,tokenizer_config.json} (the real Llama-3 vocabulary, 128,256 tokens) and
# .device/prefix, both made by scripts/device-deps.sh.
# Environment: BENCH_ROWS (default: the default rows; e.g. 1b-lora-ckpt,135m-lora or decode-1b-b1-p32,
# decode-135m-b1-p32), BENCH_STEPS (override every train row's steps), BENCH_ONLY (train, the default; decode;
# train,decode), BENCH_ARGS (more flags, e.g. "--no-compile-ref", "--profile 1b-lora-ckpt", "--new 64").
# Time on an H200 (estimate): train: ~4 min for the 7 default rows without the compiled reference, plus ~1 min per
# compiled reference (5 of them; packed rows reuse their padded row's reference). Decode (BENCH_ONLY=decode, the
# 12 default rows): ~5-6 min, of which ~2-3 min compile the two compiled-reference rows (--no-compile-ref: ~3 min).
# Build (~80 s) not counted.
source "$(dirname "$0")/gpu-build.sh" || exit 1
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/-*$//')
ONLY=${BENCH_ONLY:-train}
args=(--llms build-gpu/bin/llmstudio --tokenizer .device/llama3 --rows "${BENCH_ROWS:-default}" --only "$ONLY"
      --out "$OUT/${GPU:-gpu}-bench-${ONLY//,/-}-$(date -u +%F).json")
[ -n "${BENCH_STEPS:-}" ] && args+=(--steps "$BENCH_STEPS")
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# shellcheck disable=SC2086  # BENCH_ARGS: words on purpose
"$PY" bench/bench_gpu.py "${args[@]}" ${BENCH_ARGS:-} 2>&1 | grep --line-buffered -v "Writing model\|Loading weights\|FutureWarning\|warnings.warn" | tee "$OUT/bench.log"
exit "${PIPESTATUS[0]}"
