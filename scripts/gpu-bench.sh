#!/usr/bin/env bash
# Device-machine run of the training benchmark (issue 13): builds build-gpu/bin/llmstudio as scripts/gpu-check.sh
# does (configure + the CLI target only, no parity tests), then bench/bench_gpu.py's train rows, each `llmstudio
# train` vs transformers + PEFT (and under torch.compile) in the same run. Writes under $OUT (or ./gpu-out):
# machine.txt, configure/build logs, <gpu>-bench-train-<date>.json (copy it to docs/verified/), bench.log, and
# with --profile ROW in BENCH_ARGS profile-ROW.txt + trace-ROW.json.gz.
# Needs .device/llama3/{tokenizer.json,tokenizer_config.json} (the real Llama-3 vocabulary, 128,256 tokens) and
# .device/prefix, both made by scripts/device-deps.sh.
# Environment: BENCH_ROWS (default: the default rows; e.g. 1b-lora-ckpt,135m-lora), BENCH_STEPS (override every
# row's steps), BENCH_ONLY (train; train,decode adds the decode rows), BENCH_ARGS (more flags, e.g.
# "--no-compile-ref" or "--profile 1b-lora-ckpt").
# Time on an H200 (estimate): ~4 min for the 7 default rows without the compiled reference, plus ~1 min per
# compiled reference (5 of them; packed rows reuse their padded row's reference); build not counted.
source "$(dirname "$0")/gpu-build.sh" || exit 1
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/-*$//')
args=(--llms build-gpu/bin/llmstudio --tokenizer .device/llama3 --out "$OUT/${GPU:-gpu}-bench-train-$(date -u +%F).json"
      --rows "${BENCH_ROWS:-default}" --only "${BENCH_ONLY:-train}")
[ -n "${BENCH_STEPS:-}" ] && args+=(--steps "$BENCH_STEPS")
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# shellcheck disable=SC2086  # BENCH_ARGS: words on purpose
"$PY" bench/bench_gpu.py "${args[@]}" ${BENCH_ARGS:-} 2>&1 | grep --line-buffered -v "Writing model\|Loading weights\|FutureWarning\|warnings.warn" | tee "$OUT/bench.log"
exit "${PIPESTATUS[0]}"
