#!/usr/bin/env bash
# `make wheel`, the Dockerfiles and tests/e2e/test_wheel.py: builds the llmstudio-native wheel into OUT_DIR
# (default dist/) with `pip wheel . --no-build-isolation`, against the torch/pyarrow of PY (default .venv's).
# Reuses build-wheel/ (pyproject.toml's build-dir) and ccache with the Makefile's settings, so after `make build`
# it mostly relinks.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-dist}
PY=${PY:-.venv/bin/python}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
# The compiler CMake picks for `make build` (c++); scikit-build-core would take Python's (g++ here), and ccache keys
# on the compiler's name, so objects of `make build` would not be reused.
export CXX=${CXX:-c++}
if [[ -n ${JOBS:-} ]]; then export CMAKE_BUILD_PARALLEL_LEVEL=$JOBS; fi
mkdir -p "$OUT_DIR"
# --no-index: everything the build needs is already in PY's environment (scripts/setup-dev.sh).
"$PY" -m pip wheel . --no-build-isolation --no-deps --no-index -w "$OUT_DIR" ${WHEEL_VERBOSE:+-v}
ls -1 "$OUT_DIR"/llmstudio_native-*.whl
