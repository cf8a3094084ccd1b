#!/usr/bin/env bash
# A recipe author's first hour, as a test: scripts/new_recipe.sh writes a project into a temporary
# folder, which is configured, built and run on builtin:tiny against chorus
#
#   new_recipe_test.sh build-tree SOURCE_DIR BUILD_DIR   ... as this build folder exports it
#   new_recipe_test.sh installed  SOURCE_DIR BUILD_DIR   ... installed into a temporary prefix with
#       cmake --install and found with find_package through CMAKE_PREFIX_PATH alone; g++ 12 must be
#       refused there with the explanation
set -euo pipefail
mode=$1 source_dir=$2 build_dir=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "new_recipe_test ($mode): $*" >&2; exit 1; }

"$source_dir/scripts/new_recipe.sh" "$scratch/first-recipe" > "$scratch/new_recipe.out"
for file in CMakeLists.txt first_recipe.cpp data/prompts.jsonl README.md; do
  [ -s "$scratch/first-recipe/$file" ] || fail "new_recipe.sh wrote no $file (it printed: $(cat "$scratch/new_recipe.out"))"
done
# A second project into the same folder is refused: nothing is overwritten.
if "$source_dir/scripts/new_recipe.sh" "$scratch/first-recipe" 2> "$scratch/again.err"; then
  fail "new_recipe.sh wrote into a folder that was not empty"
fi
grep -q "not empty" "$scratch/again.err" || fail "no reason given for refusing a non-empty folder: $(cat "$scratch/again.err")"

case "$mode" in
  build-tree)
    expected_package_dir=$build_dir
    configure=(-Dchorus_DIR="$build_dir")
    ;;
  installed)
    prefix="$scratch/prefix"
    cmake --install "$build_dir" --prefix "$prefix" > "$scratch/install.out"
    for program in chorus-tokenize chorus-serve chorus-node; do
      [ -x "$prefix/bin/$program" ] || fail "cmake --install did not install bin/$program"
    done
    [ -f "$prefix/include/chorus/chorus.hpp" ] || fail "cmake --install did not install include/chorus/chorus.hpp"
    expected_package_dir=$prefix/lib/cmake/chorus
    # No way back to the checkout: the package must come from the prefix.
    configure=(-DCMAKE_PREFIX_PATH="$prefix" -DCHORUS_SOURCE_DIR="$scratch/no-chorus-checkout")
    # The same refusal as chorus's own build for a compiler that miscompiles coroutines.
    if command -v g++-12 > /dev/null; then
      if cmake -S "$scratch/first-recipe" -B "$scratch/build-gcc" -DCMAKE_CXX_COMPILER=g++-12 "${configure[@]}" \
           > "$scratch/gcc.out" 2>&1; then
        fail "find_package(chorus) accepted g++ 12"
      fi
      grep -q "miscompiles C++20 coroutines" "$scratch/gcc.out" || fail "g++ 12 refused without the reason: $(tail -20 "$scratch/gcc.out")"
    fi
    ;;
  *) fail "unknown mode (build-tree or installed)" ;;
esac

project=$scratch/first-recipe
cmake -S "$project" -B "$project/build" -G Ninja "${configure[@]}" > "$scratch/configure.out" 2>&1 \
  || fail "configuring the project failed: $(tail -30 "$scratch/configure.out")"
found=$(sed -n 's/^chorus_DIR:[A-Z]*=//p' "$project/build/CMakeCache.txt")
[ "$(realpath "$found")" = "$(realpath "$expected_package_dir")" ] \
  || fail "chorus was found in '$found', expected $expected_package_dir"
cmake --build "$project/build" > "$scratch/build.out" 2>&1 || fail "building the project failed: $(tail -30 "$scratch/build.out")"

# --schema describes the fields with the comments above them (chorus_add_recipe, chorus-config-docs).
"$project/build/first_recipe" --schema > "$scratch/schema.json" || fail "--schema failed"
grep -q "Adam's learning rate" "$scratch/schema.json" || fail "--schema lacks the comment above lr: $(head -c 2000 "$scratch/schema.json")"

steps=2
(cd "$scratch" && "$project/build/first_recipe" --set steps=$steps --set samples_per_batch=16 --output run) \
  > "$scratch/run.out" 2>&1 || fail "the recipe failed: $(tail -30 "$scratch/run.out")"
grep -q "GRPO: $steps steps" "$scratch/run.out" || fail "the recipe did not take $steps GRPO steps: $(tail -30 "$scratch/run.out")"
[ -f "$scratch/run/first_recipe-final/config.json" ] || fail "the recipe saved no final model"
[ "$(wc -l < "$scratch/run/metrics.jsonl")" -ge $steps ] || fail "the recipe logged fewer than $steps metrics lines"
echo "new_recipe_test ($mode): generated, built against $found and ran $steps GRPO steps"
