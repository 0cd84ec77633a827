#!/usr/bin/env bash
# Device-machine run of the training benchmark (issue 13): builds build-gpu/bin/llmstudio as scripts/gpu-check.sh
# does (configure + the CLI target only, no parity tests), then bench/bench_gpu.py's train rows, each `llmstudio
# train` vs transformers + PEFT (and under torch.compile) in the same run. Writes under $OUT (or ./gpu-out):
# machine.txt, configure/build logs, <gpu>-bench-train-<date>.json (copy it to docs/verified/), bench.log, and
# with --profile ROW in BENCH_ARGS profile-ROW.txt + trace-ROW.json.gz.
# Needs .device/llama3/{tokenizer.json,tokenizer_config.json} (the real Llama-3 vocabulary, 128,256 tokens) and, as
# gpu-check.sh, .device/pcre2 and .device/icu.
# Environment: BENCH_ROWS (default: the default rows; e.g. 1b-lora-ckpt,135m-lora), BENCH_STEPS (override every
# row's steps), BENCH_ONLY (train; train,decode adds the decode rows), BENCH_ARGS (more flags, e.g.
# "--no-compile-ref" or "--profile 1b-lora-ckpt").
# Time on an H200 (estimate): ~4 min for the 7 default rows without the compiled reference, plus ~1 min per
# compiled reference (5 of them; packed rows reuse their padded row's reference); build not counted.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
PY=$(command -v python3)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "peft", peft.__version__)'
} 2>&1 | tee "$OUT/machine.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLMS_PYTHON="$PY" -DLLMS_BUILD_TESTS=OFF -DLLMS_WITH_SERVER=OFF \
  -DPCRE2_ROOT="$PWD/.device/pcre2" -DICU_ROOT="$PWD/.device/icu" > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target llmstudio_cli > "$OUT/build.log" 2>&1 || { grep -B2 -A8 -m5 error "$OUT/build.log"; exit 1; }
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/-*$//')
args=(--llms build-gpu/bin/llmstudio --tokenizer .device/llama3 --out "$OUT/${GPU:-gpu}-bench-train-$(date -u +%F).json"
      --rows "${BENCH_ROWS:-default}" --only "${BENCH_ONLY:-train}")
[ -n "${BENCH_STEPS:-}" ] && args+=(--steps "$BENCH_STEPS")
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# shellcheck disable=SC2086  # BENCH_ARGS: words on purpose
"$PY" bench/bench_gpu.py "${args[@]}" ${BENCH_ARGS:-} 2>&1 | grep --line-buffered -v "Writing model\|Loading weights\|FutureWarning\|warnings.warn" | tee "$OUT/bench.log"
exit "${PIPESTATUS[0]}"
