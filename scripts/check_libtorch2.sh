#!/usr/bin/env bash
# Checks on a CPU machine that chorus's LibTorch code compiles against LibTorch 2.x, as a CUDA build
# on a GPU machine needs (docs/gpu.md): downloads Debian trixie's libtorch-dev (LibTorch 2.6, with
# the generated ATen headers) into build-libtorch2/, unpacks it without installing anything, and runs
# every LibTorch translation unit of the build's compile_commands.json through `clang++ -fsyntax-only`
# with LibTorch 2.6's headers in place of 1.13's. Prints one line per file and exits 1 on any error.
#   scripts/check_libtorch2.sh [BUILD_DIR] [FILE...]   (default build/; FILE: only those sources)
# Not part of CI (it downloads ~20 MB and takes a few minutes on 2 cores); run it after touching
# LibTorch calls. What only LibTorch 2 has stays behind `#if TORCH_VERSION_MAJOR >= 2`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
shift || true
work="$root/build-libtorch2"
headers="$work/usr/include"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"

if [ ! -f "$headers/torch/csrc/api/include/torch/version.h" ]; then
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$work/apt/sources.list"
  apt_options=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
               -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o "APT::Sandbox::User=root")
  echo "check_libtorch2: fetching trixie's package lists and libtorch-dev"
  apt-get "${apt_options[@]}" update -qq
  (cd "$work" && apt-get "${apt_options[@]}" download -qq libtorch-dev)
  dpkg-deb -x "$work"/libtorch-dev_*.deb "$work"
fi
version="$(grep -E 'define TORCH_VERSION_(MAJOR|MINOR)' "$headers/torch/csrc/api/include/torch/version.h" \
  | awk '{print $3}' | paste -sd.)"
echo "check_libtorch2: LibTorch $version headers in $headers"

python3 - "$build" "$headers" "$@" <<'PY'
import json, os, re, shlex, subprocess, sys
build, headers, only = sys.argv[1], sys.argv[2], set(sys.argv[3:])
root = os.path.dirname(os.path.abspath(build)) + "/"
failed = 0
for entry in json.load(open(os.path.join(build, "compile_commands.json"))):
    source = entry["file"].replace(root, "")
    if "/usr/include/torch/csrc/api/include" not in entry["command"] or source.startswith("build"):
        continue
    if only and source not in only:
        continue
    args, command, i = shlex.split(entry["command"]), [], 0
    while i < len(args):
        arg = args[i]
        if arg == "-Xclang" and i + 1 < len(args) and args[i + 1] in ("-include-pch", "-include"):
            i += 4  # the precompiled header (built against 1.13): included as a plain header below
            continue
        if arg == "-o":
            i += 2
            continue
        if arg in ("-c", "-g", "-O2"):
            i += 1
            continue
        if arg == "-isystem" and args[i + 1] == "/usr/include/torch/csrc/api/include":
            command += ["-isystem", headers + "/torch/csrc/api/include", "-isystem", headers]
            i += 2
            continue
        command.append(arg)
        i += 1
    command[-1:-1] = ["-fsyntax-only", "-include", "torch/torch.h"]
    result = subprocess.run(command, cwd=entry["directory"], capture_output=True, text=True)
    errors = len(re.findall(r": error:", result.stderr))
    print(f"{source}: {'ok' if result.returncode == 0 else f'{errors} error(s)'}", flush=True)
    if result.returncode != 0:
        failed += 1
        print("\n".join(line for line in result.stderr.splitlines() if ": error:" in line)[:4000])
print(f"check_libtorch2: {failed} file(s) failed")
sys.exit(1 if failed else 0)
PY
