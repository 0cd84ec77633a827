#!/usr/bin/env bash
# `make test-arm64`: LLM Studio cross-compiled for Linux aarch64 and tested under emulation (qemu-aarch64).
#   1. installs what it needs (idempotent): Debian's crossbuild-essential-arm64 and qemu-user, the arm64 -dev
#      packages via multiarch (dpkg --add-architecture arm64), and the aarch64 libtorch of the PyPI torch wheel
#      (CPU build; fetched once with `pip download --platform manylinux_2_28_aarch64` into .cache/arm64/)
#   2. configures build-arm64 with cmake/toolchains/aarch64-linux-gnu.cmake and builds the CLI and the unit tests
#   3. runs under qemu-aarch64: every core unit test, the torch unit tests (all of them unless
#      ARM64_TORCH_TESTS_FILTER narrows them), and tests/arm64 (llmstudio env reports aarch64; greedy generation
#      equals transformers'; a tiny model trains a few steps and generates with its adapter).
# Environment: JOBS (default 2), ARM64_BUILD (default build-arm64), ARM64_TORCH_VERSION (default 2.9.1),
# ARM64_TORCH_TESTS_FILTER (gtest filter for llmstudio_tests, default '*').
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}
BUILD=${ARM64_BUILD:-build-arm64}
TORCH_VERSION=${ARM64_TORCH_VERSION:-2.9.1}
CACHE=$ROOT/.cache/arm64
TORCH_ROOT=$CACHE/torch-$TORCH_VERSION
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
t0=$(date +%s)
say() { echo "test-arm64 [$(( $(date +%s) - t0 ))s]: $*"; }

# --- 1. dependencies -------------------------------------------------------------------------------------------
bash scripts/setup-dev.sh >/dev/null  # host tools (cmake, ninja, ccache) and .venv (pytest, transformers)
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
# Multi-Arch: same packages must match the installed amd64 versions; apt resolves both from the same archive.
# libyaml-cpp-dev is NOT Multi-Arch: same: installing its arm64 package would remove the amd64 one the native build
# needs, so only its runtime library comes from apt and the -dev files are unpacked from the .deb (below).
ARM64_PKGS=(crossbuild-essential-arm64 qemu-user libpcre2-dev:arm64 libicu-dev:arm64 libyaml-cpp0.7:arm64
            libgtest-dev:arm64 libsqlite3-dev:arm64 libcpp-httplib-dev:arm64)
missing=()
for p in "${ARM64_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "adding the arm64 architecture to dpkg (multiarch)"
    $SUDO dpkg --add-architecture arm64
  fi
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ ! -f /usr/lib/aarch64-linux-gnu/cmake/yaml-cpp/yaml-cpp-config.cmake ]]; then
  say "unpacking libyaml-cpp-dev:arm64 (headers are shared with the amd64 package; cmake files and .so link)"
  (cd "$(mktemp -d)" && apt-get download -qq libyaml-cpp-dev:arm64 && $SUDO dpkg -x libyaml-cpp-dev_*_arm64.deb /)
fi

# The aarch64 torch wheel: only its libtorch (lib/, include/, share/cmake, the bundled torch.libs) is unpacked.
if [[ ! -f $TORCH_ROOT/.unpacked ]]; then
  mkdir -p "$CACHE/wheel"
  whl=$(ls "$CACHE"/wheel/torch-"$TORCH_VERSION"-*manylinux_2_28_aarch64.whl 2>/dev/null | head -n1 || true)
  if [[ -z $whl ]]; then
    say "downloading torch==$TORCH_VERSION for manylinux_2_28_aarch64 into $CACHE/wheel"
    # The Python tag only picks a file; nothing of the wheel's Python part is used.
    .venv/bin/python -m pip download -q "torch==$TORCH_VERSION" --platform manylinux_2_28_aarch64 \
      --python-version 3.12 --implementation cp --abi cp312 --only-binary=:all: --no-deps -d "$CACHE/wheel"
    whl=$(ls "$CACHE"/wheel/torch-"$TORCH_VERSION"-*manylinux_2_28_aarch64.whl | head -n1)
  fi
  rm -rf "$TORCH_ROOT"
  "$ROOT/.venv/bin/python" - "$whl" "$TORCH_ROOT" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
keep = ("torch/lib/", "torch/include/", "torch/share/", "torch.libs/", "torch/version.py")
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith(keep)]
    z.extractall(out, names)
    if any(n.startswith("torch/lib/libtorch_cuda") for n in names):
        sys.exit(f"{whl} is a CUDA build; the emulated tests need a CPU-only aarch64 wheel (ARM64_TORCH_VERSION)")
PY
  touch "$TORCH_ROOT/.unpacked"
fi
# New wheels are built with the C++11 ABI only (the build defines _GLIBCXX_USE_CXX11_ABI=1): check the exports.
cxx11_syms=$(aarch64-linux-gnu-nm -D --defined-only "$TORCH_ROOT/torch/lib/libc10.so" | grep -c 'St7__cxx11' || true)
if ((cxx11_syms == 0)); then
  echo "test-arm64: $TORCH_ROOT/torch/lib/libc10.so exports no std::__cxx11 symbols (old ABI wheel?)" >&2
  exit 1
fi

# --- 2. cross build -------------------------------------------------------------------------------------------
if [[ ! -f $BUILD/build.ninja ]] || ! grep -q "^Torch_DIR:[A-Z]*=$TORCH_ROOT/" "$BUILD/CMakeCache.txt"; then
  say "configuring $BUILD"
  # Tests are run directly (below), so gtest discovery must not run them at build time (PRE_TEST).
  cmake -S . -B "$BUILD" -G Ninja --toolchain cmake/toolchains/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DTorch_DIR="$TORCH_ROOT/torch/share/cmake/Torch" \
    -DLLMS_WITH_PARQUET=OFF -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST >/dev/null
fi
say "building llmstudio, llmstudio_core_tests, llmstudio_tests for aarch64 (-j $JOBS)"
cmake --build "$BUILD" -j "$JOBS" --target llmstudio_cli llmstudio_core_tests llmstudio_tests
say "build done"

# --- 3. tests under qemu-aarch64 ------------------------------------------------------------------------------
# libc6:arm64 (multiarch) provides /lib/ld-linux-aarch64.so.1, so no QEMU_LD_PREFIX is needed.
QEMU=(qemu-aarch64)
BIN=$ROOT/$BUILD/bin/llmstudio
file_arch=$(od -An -t u2 -j 18 -N 2 "$BIN" | tr -d ' ')  # ELF e_machine: 183 = EM_AARCH64
[[ $file_arch == 183 ]] || { echo "test-arm64: $BIN is not an aarch64 ELF (e_machine $file_arch)" >&2; exit 1; }
say "core unit tests (all)"
"${QEMU[@]}" "$BUILD/tests/unit/llmstudio_core_tests" --gtest_brief=1
say "torch unit tests (filter '${ARM64_TORCH_TESTS_FILTER:-*}')"
"${QEMU[@]}" "$BUILD/tests/unit/llmstudio_tests" --gtest_brief=1 --gtest_filter="${ARM64_TORCH_TESTS_FILTER:-*}"
say "end-to-end under emulation (tests/arm64)"
LLMS_ARM64_BIN=$BIN LLMS_QEMU="${QEMU[*]}" .venv/bin/python -m pytest -q -s tests/arm64
say "ok"
