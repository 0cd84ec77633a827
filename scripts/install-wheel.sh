#!/usr/bin/env bash
# The Dockerfiles' runtime environment: a venv at VENV_DIR with the wheel built by scripts/build-wheel.sh and
# exactly the torch and pyarrow versions it was built against (taken from .venv, so the same pins and, on
# aarch64, the same CUDA index as scripts/setup-dev.sh; pip's cache makes the second install a copy).
#   scripts/install-wheel.sh VENV_DIR WHEEL
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_DIR=$1
WHEEL=$2
SRC_PY=${PY:-.venv/bin/python}
# The interpreter .venv was made with, so the runtime image (same distribution) has it at the same path.
BASE_PY=$("$SRC_PY" -c 'import sys; print(sys._base_executable)')
TORCH=$("$SRC_PY" -c 'import importlib.metadata as m; print(m.version("torch"))')
ARROW=$("$SRC_PY" -c 'import importlib.metadata as m; print(m.version("pyarrow"))')
if [[ $(uname -s) == Linux && $(uname -m) == aarch64 && -z ${TORCH_INDEX_URL:-} ]]; then
  TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130  # as scripts/setup-dev.sh
fi
if [[ -n ${TORCH_INDEX_URL:-} && ${TORCH_INDEX_URL} != none ]]; then
  export PIP_EXTRA_INDEX_URL="$TORCH_INDEX_URL${PIP_EXTRA_INDEX_URL:+ $PIP_EXTRA_INDEX_URL}"
fi
"$BASE_PY" -m venv "$VENV_DIR"
"$VENV_DIR/bin/python" -m pip install -q --upgrade pip
"$VENV_DIR/bin/python" -m pip install -q "torch==$TORCH" "pyarrow==$ARROW" "$WHEEL"
"$VENV_DIR/bin/llmstudio" --version
