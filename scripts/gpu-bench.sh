#!/usr/bin/env bash
# Device-machine run: build (as scripts/gpu-check.sh), the CUDA parity tests, then bench/bench_gpu.py.
# Needs .device/gpt2/tokenizer.json (a real 50k-token vocabulary for realistic lm_head sizes).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
GPU_EXTRA_TESTS="tests/parity/test_generation_parity.py" bash scripts/gpu-check.sh || exit 1
PYTHONUNBUFFERED=1 python3 bench/bench_gpu.py --llms build-gpu/bin/llmstudio --tokenizer .device/gpt2 \
  --out "$OUT/bench-gpu.json" 2>&1 | grep -v "Writing\|Loading weights" | tee "$OUT/bench.log"
