#!/usr/bin/env bash
# GPU checks for the device machine: builds (scripts/gpu-build.sh), then runs the decode CUDA-graph checks, the CUDA
# kernel checks and the CUDA parity tests (plus $GPU_EXTRA_TESTS). Writes logs under $OUT (or ./gpu-out).
source "$(dirname "$0")/gpu-build.sh" || exit 1
build-gpu/bin/llmstudio env | tee "$OUT/env.txt"
build-gpu/bin/llmstudio env --json > "$OUT/env.json"
# The decode step's CUDA graphs: replay vs eager vs the previous loop (tests/tools/decode_checks.h).
build-gpu/bin/llms_decode_tool check 2>&1 | tee "$OUT/decode-graphs.txt"
export LLMS_BIN=$PWD/build-gpu/bin/llmstudio LLMS_BUILD_DIR=$PWD/build-gpu PYTHONUNBUFFERED=1
"$PY" -m pytest -q -s -p no:cacheprovider tests/parity/test_kernels_cuda.py tests/parity/test_model_parity_cuda.py tests/parity/test_model_parity.py \
  ${GPU_EXTRA_TESTS:-} 2>&1 | tee "$OUT/parity.log"
