#!/usr/bin/env bash
# Builds the API reference of include/chorus/ with Doxygen into build/docs/html (open index.html),
# and regenerates docs/recipes-reference.md from the built recipe programs' --schema (build first:
# scripts/build.sh). A warning from Doxygen (an undocumented public name) fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p build/docs
tests/docs/doxygen_test.sh "$(command -v doxygen)" "$PWD" "$PWD/build/docs"
programs=()
for name in sft_to_gspo sft grpo gspo ppo dpo env_grpo sft_then_gspo custom_recipe; do
  for folder in recipes examples; do
    if [ -x "build/$folder/$name/$name" ]; then
      programs+=("$name=build/$folder/$name/$name")
    fi
  done
done
if [ ${#programs[@]} -ne 9 ]; then
  echo "docs.sh: build the recipe programs first (scripts/build.sh); found ${#programs[@]} of 9" >&2
  exit 1
fi
/usr/bin/python3 tests/docs/recipes_reference.py --write "$PWD" "${programs[@]}"
