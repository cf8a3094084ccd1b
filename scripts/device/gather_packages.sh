#!/usr/bin/env bash
# Runs on a Debian 12 machine with network access (a developer's or CI's): downloads the Debian
# packages chorus's build needs that a CUDA machine's image lacks (CAF, spdlog, fmt, nlohmann-json,
# Asio, cpp-httplib, PCRE2, ICU, protobuf, GoogleTest, Gloo's headers, pkg-config) into .device/debs/,
# which the device tool carries there (`carry: [".device"]`, well under its 64 MiB). LibTorch, CUDA, CMake,
# ninja and the compiler come from the GPU image itself (its PyTorch wheel holds a complete LibTorch).
# Nothing is installed here: `apt-get download` only fetches the .deb files.
#   scripts/device/gather_packages.sh          downloads what is missing from .device/debs/
#   scripts/device/gather_packages.sh --list   prints the packages, one a line
set -euo pipefail

packages=(
  libcaf-dev libcaf-core0.17 libcaf-io0.17 # actors and their network transport
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  nlohmann-json3-dev libasio-dev
  libcpp-httplib-dev libcpp-httplib0.11 libbrotli-dev libbrotli1 libssl-dev libssl3 zlib1g-dev
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  libicu-dev libicu72
  libprotobuf-dev libprotobuf32 libprotobuf-lite32 protobuf-compiler libprotoc32
  libgtest-dev googletest libbenchmark-dev libbenchmark1debian
  libgloo-dev # the Gloo headers c10d's ProcessGroupGloo.hpp includes; the wheel's LibTorch lacks them
  pkgconf pkgconf-bin libpkgconf3
)
if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

root="$(cd "$(dirname "$0")/../.." && pwd)"
debs="$root/.device/debs"
mkdir -p "$debs"
cd "$debs"
missing=()
for package in "${packages[@]}"; do
  compgen -G "${package}_*.deb" >/dev/null || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "gather_packages: downloading ${missing[*]}"
  apt-get download -qq "${missing[@]}"
fi
echo "gather_packages: $(ls "$debs"/*.deb | wc -l) packages, $(du -sh "$debs" | cut -f1) in $debs"
