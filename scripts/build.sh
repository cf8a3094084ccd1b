#!/usr/bin/env bash
# Configures and builds chorus:
#   scripts/build.sh              into build/: optimised, everything
#   scripts/build.sh --sanitize   into build-asan/: AddressSanitizer + UBSan, Debug, and the libFuzzer
#                                 targets (what CI runs under those sanitizers: the runtime, the actors,
#                                 the multi-process tests and a bounded run of each fuzzer)
#   scripts/build.sh --tsan       into build-tsan/: ThreadSanitizer, the runtime and actor tests only
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  --sanitize)
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCHORUS_SANITIZE=ON \
      -DCHORUS_BUILD_BENCH=OFF -DCHORUS_BUILD_EXAMPLES=OFF -DCHORUS_WITH_TORCH=ON >/dev/null
    cmake --build build-asan
    ;;
  --tsan)
    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHORUS_SANITIZE_THREAD=ON \
      -DCHORUS_BUILD_BENCH=OFF -DCHORUS_BUILD_EXAMPLES=OFF -DCHORUS_WITH_TORCH=ON >/dev/null
    cmake --build build-tsan
    ;;
  *)
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build
    ;;
esac
