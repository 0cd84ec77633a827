#!/usr/bin/env bash
# Prints the Debian/Ubuntu packages that own the shared libraries a program loads (the -dev packages' runtime
# halves: libicu74, libyaml-cpp0.8, ...), one per line, for a slim runtime image of the same distribution.
#   LD_LIBRARY_PATH=<torch lib dirs> scripts/runtime-packages.sh <program>
# Libraries outside dpkg (torch's, pyarrow's, the CUDA wheels') are skipped: they travel in the venv.
set -euo pipefail
ldd "$1" | awk '/=> \/(usr\/)?lib/ {print $3}' | sort -u | while read -r lib; do
  real=$(readlink -f "$lib")
  for candidate in "$lib" "$real" "${lib/#\/lib\//\/usr\/lib\/}" "${real/#\/usr\/lib\//\/lib\/}"; do
    if owner=$(dpkg -S "$candidate" 2>/dev/null); then echo "${owner%%:*}"; break; fi
  done
done | sort -u
