#!/usr/bin/env bash
# Configures and builds chorus: `scripts/build.sh` into build/ (optimised, everything), or
# `scripts/build.sh --sanitize` into build-asan/ (AddressSanitizer + UBSan, Debug; what CI runs under
# sanitizers: the runtime, the actors and their tests).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--sanitize" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCHORUS_SANITIZE=ON \
    -DCHORUS_BUILD_BENCH=OFF -DCHORUS_BUILD_EXAMPLES=OFF -DCHORUS_WITH_TORCH=ON >/dev/null
  cmake --build build-asan
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build
fi
