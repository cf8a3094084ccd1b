#!/usr/bin/env bash
# Writes a new recipe project: scripts/new_recipe.sh DIR [NAME]
#
#   DIR/CMakeLists.txt    picks clang++-19, finds chorus (installed, or this checkout), builds NAME
#   DIR/NAME.cpp          a config with a dataset field, a FunctionGrader and a GRPO stage
#   DIR/data/prompts.jsonl, DIR/README.md
#
# NAME (default: DIR's last component) names the program and the recipe function, so it must be a
# C++ identifier. Then: cmake -S DIR -B DIR/build && cmake --build DIR/build && DIR/build/NAME
set -euo pipefail
chorus=$(cd "$(dirname "$0")/.." && pwd)
template="$chorus/scripts/recipe_template"

usage() {
  echo "usage: scripts/new_recipe.sh DIR [NAME]" >&2
  echo "  writes a recipe project into DIR (new or empty); NAME, a C++ identifier, defaults to DIR's name" >&2
  exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case "$1" in -h|--help) usage ;; esac
dir=$1
name=${2:-$(basename "$(realpath -m "$dir")")}
if [ $# -lt 2 ]; then
  name=${name//[^A-Za-z0-9_]/_}   # my-recipe -> my_recipe
fi
if ! [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
  echo "new_recipe: '$name' is not a C++ identifier (letters, digits and _, not starting with a digit):" \
       "give a NAME, e.g. scripts/new_recipe.sh $dir my_recipe" >&2
  exit 2
fi
case "$name" in
  main|chorus|std)
    echo "new_recipe: '$name' is taken (the recipe is a function of that name): give another NAME" >&2
    exit 2 ;;
esac
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  echo "new_recipe: $dir exists and is not empty: give a new folder" >&2
  exit 2
fi

mkdir -p "$dir/data"
fill() { # template file -> project file, with @NAME@ and @CHORUS_SOURCE_DIR@ filled in
  sed -e "s|@NAME@|$name|g" -e "s|@CHORUS_SOURCE_DIR@|$chorus|g" "$template/$1" > "$dir/$2"
}
fill CMakeLists.txt CMakeLists.txt
fill recipe.cpp "$name.cpp"
fill README.md README.md
cp "$template/data/prompts.jsonl" "$dir/data/prompts.jsonl"

cat <<MSG
new_recipe: wrote $dir ($name.cpp, CMakeLists.txt, data/prompts.jsonl, README.md). Build and run it:
  cmake -S $dir -B $dir/build && cmake --build $dir/build && $dir/build/$name
MSG
