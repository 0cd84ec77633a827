#!/usr/bin/env bash
# Builds build-gpu/ on the device machine (an H200, our stand-in for GH200) against that machine's own python3
# torch: the CLI, the CUDA kernel check tool and the decode (CUDA graph) check tool (no GoogleTest there). Sourced
# by gpu-check.sh and gpu-bench.sh; writes machine.txt and the configure/build logs under $OUT (or ./gpu-out). The C/C++ dependencies that machine
# lacks are carried in .device/prefix (scripts/device-deps.sh makes it here; carry `.device` in the call).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
PY=$(command -v python3)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  "$PY" -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count(), "transformers", transformers.__version__, "peft", peft.__version__)'
} 2>&1 | tee "$OUT/machine.txt"
SECONDS=0
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLMS_PYTHON="$PY" -DLLMS_BUILD_TESTS=OFF -DLLMS_BUILD_TOOLS=ON \
  -DLLMS_WITH_SERVER=OFF -DLLMS_WITH_PARQUET=OFF -DCMAKE_PREFIX_PATH="$PWD/.device/prefix" -DPCRE2_ROOT="$PWD/.device/prefix" \
  -DICU_ROOT="$PWD/.device/prefix" > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target llmstudio_cli llms_kernels_tool llms_decode_tool > "$OUT/build.log" 2>&1 ||
  { grep -B2 -A8 -m5 error "$OUT/build.log"; exit 1; }
echo "build-gpu built in ${SECONDS} s"
