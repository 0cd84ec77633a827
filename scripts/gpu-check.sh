#!/usr/bin/env bash
# GPU checks for the device machine (an H200, our stand-in for GH200): builds against that machine's own
# python3 torch and runs the CUDA parity tests. Writes logs under $OUT (or ./gpu-out).
# The C/C++ dependencies that machine lacks are carried in .device/prefix (scripts/device-deps.sh makes it here).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
PY=$(command -v python3)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count(), "transformers", transformers.__version__)'
} 2>&1 | tee "$OUT/machine.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLMS_PYTHON="$PY" -DLLMS_BUILD_TESTS=OFF -DLLMS_BUILD_TOOLS=ON -DLLMS_WITH_SERVER=OFF \
  -DLLMS_WITH_PARQUET=OFF \
  -DCMAKE_PREFIX_PATH="$PWD/.device/prefix" -DPCRE2_ROOT="$PWD/.device/prefix" -DICU_ROOT="$PWD/.device/prefix" > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target llmstudio_cli llms_kernels_tool > "$OUT/build.log" 2>&1 || { grep -B2 -A8 -m5 error "$OUT/build.log"; exit 1; }
build-gpu/bin/llmstudio env | tee "$OUT/env.txt"
build-gpu/bin/llmstudio env --json > "$OUT/env.json"
export LLMS_BIN=$PWD/build-gpu/bin/llmstudio LLMS_BUILD_DIR=$PWD/build-gpu PYTHONUNBUFFERED=1
"$PY" -m pytest -q -s -p no:cacheprovider tests/parity/test_kernels_cuda.py tests/parity/test_model_parity_cuda.py tests/parity/test_model_parity.py \
  ${GPU_EXTRA_TESTS:-} 2>&1 | tee "$OUT/parity.log"
