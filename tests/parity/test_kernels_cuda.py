"""The fused CUDA kernels of src/llmstudio/kernels (RMSNorm, RoPE, SwiGLU) against their plain libtorch references
on the GPU, forward and every gradient (fp32 rel err < 1e-5, bf16/fp16 < 1e-2), through llms_kernels_tool (the GPU
machine has no GoogleTest), then their timings vs the reference formula. Skipped without a CUDA device.
Run on the GPU machine:
  cmake -S . -B build-gpu ... -DLLMS_BUILD_TOOLS=ON && cmake --build build-gpu --target llms_kernels_tool
  LLMS_BUILD_DIR=build-gpu python3 -m pytest -q -s tests/parity/test_kernels_cuda.py"""
import subprocess

import pytest
import torch

from conftest import built_tool

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _tool(mode):
    r = subprocess.run([built_tool("llms_kernels_tool"), mode], capture_output=True, text=True, timeout=600)
    print(r.stdout, r.stderr)
    if r.returncode == 77:
        pytest.fail("llms_kernels_tool skipped although torch sees a CUDA device: " + r.stdout.strip())
    return r


def test_kernels_match_references_on_cuda():
    r = _tool("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all kernel checks passed" in r.stdout


def test_kernels_benchmark():
    r = _tool("bench")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(" ms ") >= 6
