#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, and runs the whole test suite with
# ctest. CI also runs:
#   scripts/run_tests.sh --sanitize   AddressSanitizer + UBSan: the runtime, actor and multi-process
#                                     tests, and each fuzzer for a bounded time from its corpus
#   scripts/run_tests.sh --tsan       ThreadSanitizer: the runtime and actor tests
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
case "${1:-}" in
  --sanitize)
    scripts/build.sh --sanitize
    ctest --test-dir build-asan --output-on-failure -L "runtime|actors|integration|netns|fuzz|setup" -j 2
    ;;
  --tsan)
    scripts/build.sh --tsan
    ctest --test-dir build-tsan --output-on-failure -L "runtime|actors|setup" -j 2
    ;;
  *)
    scripts/build.sh
    ctest --test-dir build --output-on-failure -j 2
    ;;
esac
