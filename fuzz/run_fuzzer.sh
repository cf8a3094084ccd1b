#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time: `run_fuzzer.sh FUZZER CORPUS SECONDS`. New inputs go to
# a temporary folder (the first corpus folder is the one libFuzzer writes to); a crash leaves its
# reproducer in the current directory and fails the test.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
  "$scratch" "$corpus"
