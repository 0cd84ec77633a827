#!/usr/bin/env bash
# Builds the libFuzzer targets (torch-free, clang, ASan+UBSan) in build-fuzz and runs each for SECONDS.
# Usage: scripts/run-fuzz.sh [SECONDS]   (default 30; `make fuzz`). Env: JOBS (build jobs, default 2),
# FUZZ_BUILD (build folder, default build-fuzz), FUZZ_RSS_MB (memory limit per target, default 2048).
# Corpus per target: build-fuzz/corpus-<name>, seeded from fuzz/seeds/<name>/ and tests/data/fuzz/<name>/
# (<name> = target without "fuzz_"); dictionary fuzz/<target>.dict if present. Findings (crash, leak,
# sanitizer report, timeout, OOM) are saved under build-fuzz/artifacts-<name>/ and make the script exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-30}
[[ "$SECS" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=${JOBS:-2}
RSS_MB=${FUZZ_RSS_MB:-2048}

if [[ ! -f "$BUILD/build.ninja" ]]; then
  mkdir -p "$BUILD"
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLLMS_WITH_TORCH=OFF -DLLMS_BUILD_FUZZ=ON -DLLMS_BUILD_TESTS=OFF >"$BUILD/configure.log" 2>&1 ||
    { cat "$BUILD/configure.log" >&2; echo "run-fuzz: configure failed" >&2; exit 1; }
fi
cmake --build "$BUILD" -j "$JOBS" >"$BUILD/fuzz-build.log" 2>&1 ||
  { tail -50 "$BUILD/fuzz-build.log" >&2; echo "run-fuzz: build failed (log: $BUILD/fuzz-build.log)" >&2; exit 1; }

mapfile -t TARGETS < <(grep -v '^$' "$BUILD/fuzz/targets.txt" 2>/dev/null || true)
((${#TARGETS[@]})) || { echo "run-fuzz: no fuzz targets (fuzz/fuzz_*.cpp)" >&2; exit 1; }

# Data files by absolute path: with ccache's base_dir, __FILE__ in the targets is relative.
export LLMS_FUZZ_TOKENIZER=${LLMS_FUZZ_TOKENIZER:-$PWD/tests/data/tokenizer-tiny-bytelevel.json}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=0
for t in "${TARGETS[@]}"; do
  name=${t#fuzz_}
  bin="$BUILD/fuzz/$t"
  corpus="$BUILD/corpus-$name"
  artifacts="$BUILD/artifacts-$name"
  log="$BUILD/fuzz-$name.log"
  mkdir -p "$corpus" "$artifacts"
  for seeds in "fuzz/seeds/$name" "tests/data/fuzz/$name"; do
    [[ -d "$seeds" ]] && find "$seeds" -maxdepth 1 -type f -exec cp -n {} "$corpus/" \;
  done
  args=(-max_total_time="$SECS" -print_final_stats=1 -timeout=10 -rss_limit_mb="$RSS_MB"
        -artifact_prefix="$artifacts/")
  [[ -f "fuzz/$t.dict" ]] && args+=(-dict="fuzz/$t.dict")
  rc=0
  "$bin" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
  if [[ -z "$runs" ]]; then runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true); fi
  files=$(find "$corpus" -type f | wc -l)
  finding=$(grep -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)[^ ]*( [a-z-]+)?|runtime error:.*|invariant broken:.*' "$log" | head -1 || true)
  if ((rc != 0)) || [[ -n "$finding" ]]; then
    failed=1
    artifact=$(grep -oE "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //' || true)
    echo "$t: FAILED (exit $rc) after ${runs:-?} runs: ${finding:-see log}; input: ${artifact:-none}; log: $log"
    grep -m1 -A25 -E '^==[0-9]+==ERROR|runtime error|invariant broken' "$log" >&2 || tail -30 "$log" >&2
  else
    echo "$t: ok, ${runs:-?} runs in ${SECS}s, no findings, corpus $files files"
  fi
done
exit $failed
