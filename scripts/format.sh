#!/usr/bin/env bash
# Formats chorus's C++ sources with clang-format-19 and the repository's .clang-format.
#   scripts/format.sh           rewrites every tracked source that differs
#   scripts/format.sh --check   changes nothing; lists each difference and fails if there is one (.ci/run)
#   scripts/format.sh FILE...   formats just these files
set -euo pipefail
cd "$(dirname "$0")/.."

format=clang-format-19
if ! command -v "$format" >/dev/null 2>&1; then
  echo "format: $format not found: run scripts/setup.sh" >&2
  exit 2
fi

check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi
if [ $# -gt 0 ]; then
  files=("$@")
else
  # The new-recipe template is not C++ until scripts/new_recipe.sh fills in its @NAME@.
  mapfile -t files < <(git ls-files -- '*.cpp' '*.hpp' '*.h' '*.cc' '*.inc' ':!scripts/recipe_template/*')
fi

if [ $check -eq 1 ]; then
  if ! "$format" --dry-run --Werror "${files[@]}"; then
    echo "format: the files above differ from .clang-format: run scripts/format.sh" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files match .clang-format"
else
  "$format" -i "${files[@]}"
fi
