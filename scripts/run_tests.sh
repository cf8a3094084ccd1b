#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, and runs the whole test suite with
# ctest. `scripts/run_tests.sh --sanitize` instead builds under AddressSanitizer + UBSan and runs the
# runtime, actor and multi-process tests there (CI runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "${1:-}" = "--sanitize" ]; then
  scripts/build.sh --sanitize
  ctest --test-dir build-asan --output-on-failure -L "runtime|actors|integration" -j 2
else
  scripts/build.sh
  ctest --test-dir build --output-on-failure -j 2
fi
