#!/usr/bin/env bash
# Builds the API reference of include/chorus/ with Doxygen into build/docs/html (open index.html),
# and regenerates docs/recipes-reference.md from the built recipe programs' --schema (build first:
# scripts/build.sh). A warning from Doxygen (an undocumented public name) fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p build/docs
tests/docs/doxygen_test.sh "$(command -v doxygen)" "$PWD" "$PWD/build/docs"
# The reference is written by the command of the test that checks it (tests/docs/CMakeLists.txt names
# the programs), with --write for --check.
if [ ! -f build/CTestTestfile.cmake ]; then
  echo "docs.sh: build chorus first (scripts/build.sh): no build/CTestTestfile.cmake" >&2
  exit 1
fi
mapfile -d '' command < <(ctest --test-dir build -R '^docs.RecipesReferenceMatchesThePrograms$' --show-only=json-v1 \
  | /usr/bin/python3 -c 'import json, sys
tests = json.load(sys.stdin)["tests"]
sys.stdout.write("\0".join(tests[0]["command"]) if tests else "")')
if [ ${#command[@]} -eq 0 ]; then
  echo "docs.sh: build chorus first (scripts/build.sh): build/ has no test docs.RecipesReferenceMatchesThePrograms" >&2
  exit 1
fi
"${command[@]/#--check/--write}"
