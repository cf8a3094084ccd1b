#!/usr/bin/env bash
# Installs every Debian package chorus needs to build, test and benchmark. Idempotent: prints
# nothing and changes nothing when all are present. Run as root or with sudo available.
set -euo pipefail

packages=(
  cmake ninja-build
  clang-19              # the compiler: g++ 12 miscompiles coroutine temporaries (see CMakeLists.txt)
  g++                   # libstdc++, which clang++ uses
  libcaf-dev            # CAF 0.17: actors and their network transport
  libasio-dev           # standalone Asio: the recipe executor and C++20 coroutines
  nlohmann-json3-dev libspdlog-dev
  libgtest-dev libbenchmark-dev
  libtorch-dev          # LibTorch (CPU)
  libopenblas0-pthread  # without it LibTorch falls back to the reference BLAS, 30x slower
  python3-torch         # the independent PyTorch reference the model tests compare logits with
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
