#!/usr/bin/env bash
# Runs Doxygen over include/chorus/ (docs/Doxyfile) into OUTPUT and fails on any warning, printing
# them: every public class, function and field has a brief. Usage: doxygen_test.sh DOXYGEN SOURCE_DIR OUTPUT
set -euo pipefail
doxygen=$1 source_dir=$2 output=$3
mkdir -p "$output"
cd "$source_dir"
warnings=$({ cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $output"; } | "$doxygen" - 2>&1 >/dev/null || true)
count=$(printf '%s' "$warnings" | grep -c . || true)
if [ "$count" -ne 0 ]; then
  printf '%s\n' "$warnings" >&2
  echo "doxygen_test: $count warning(s): document the names above (a /// brief each)" >&2
  exit 1
fi
[ -f "$output/html/index.html" ] || { echo "doxygen_test: no $output/html/index.html" >&2; exit 1; }
echo "doxygen_test: 0 warnings; the reference is in $output/html"
