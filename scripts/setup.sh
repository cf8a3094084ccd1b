#!/usr/bin/env bash
# Installs every Debian package chorus needs to build, test and benchmark. Idempotent: prints
# nothing and changes nothing when all are present. Run as root or with sudo available.
#   scripts/setup.sh --list   prints the packages, one a line, and installs nothing (the test
#                             setup.ListsEveryPackageTheBuildUses checks the build against it)
# A package installed by hand and missing here breaks every new machine while yours stays green:
# add it here in the same commit as the code that needs it.
set -euo pipefail

packages=(
  cmake ninja-build
  clang-19              # the compiler: g++ 12 miscompiles coroutine temporaries (see CMakeLists.txt)
  libclang-rt-19-dev    # clang's sanitizer and libFuzzer runtimes (scripts/build.sh --sanitize, --tsan)
  llvm-19               # llvm-symbolizer-19: sanitizer reports with function names, which suppressions match
  clang-format-19       # the formatting .ci/run checks (scripts/format.sh applies it)
  g++                   # libstdc++, which clang++ uses
  libcaf-dev            # CAF 0.17: actors and their network transport
  libasio-dev           # standalone Asio: the recipe executor and C++20 coroutines
  nlohmann-json3-dev libspdlog-dev
  libgtest-dev libbenchmark-dev
  libtorch-dev          # LibTorch (CPU)
  libgloo-dev           # the headers of Gloo, the collectives under c10d that trainer data parallelism uses
  libopenblas0-pthread  # without it LibTorch falls back to the reference BLAS, 30x slower
  libopenblas0-openmp   # the BLAS chorus links: its products use the calling thread's OpenMP threads
  python3-torch         # the independent PyTorch reference the model tests compare logits with
  python3-jsonschema    # validates the shipped configs against the recipe programs' --schema
  python3-jinja2        # renders models' chat templates as transformers does, for the template parity tests
  libpcre2-dev          # tokenizer split regexes with Unicode classes
  libicu-dev            # NFC normalisation (Qwen tokenizers)
  libprotobuf-dev protobuf-compiler  # TensorBoard event files (metrics)
  libcpp-httplib-dev pkg-config      # chorus-serve's HTTP server and the OpenAI judges' client
  chromium              # headless: the test that the main job's report.html renders its charts
  doxygen               # the API reference of include/chorus/ (scripts/docs.sh; a test fails on warnings)
  iproute2              # ip and tc: the network fault tests' namespaces, veth pairs and netem
)
# Node.js runs the reference tokenizer (@huggingface/tokenizers) in the parity tests. Some machines
# bring their own Node.js with npm; Debian's packages otherwise.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1 || [ "${1:-}" = "--list" ]; then
  packages+=(nodejs npm)
fi
if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# The npm packages of the tokenizer parity test, pinned by its package-lock.json.
parity="$(cd "$(dirname "$0")/.." && pwd)/tests/tokenizer_parity"
# Installed again whenever package.json names a package that node_modules lacks.
parity_missing="$(cd "$parity" && node -e '
  const fs = require("fs");
  const names = Object.keys(JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies);
  console.log(names.filter((name) => !fs.existsSync("node_modules/" + name)).join(" "));')"
if [ -n "$parity_missing" ]; then
  echo "setup: installing the npm packages of tests/tokenizer_parity"
  npm ci --silent --no-audit --no-fund --prefix "$parity" >/dev/null
fi

# The official OpenAI client that tests chorus-serve, pinned by tests/serve/package-lock.json.
serve_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/serve"
if [ ! -d "$serve_tests/node_modules/openai" ]; then
  echo "setup: installing the npm packages of tests/serve"
  npm ci --silent --no-audit --no-fund --prefix "$serve_tests" >/dev/null
fi
