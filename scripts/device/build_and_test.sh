#!/usr/bin/env bash
# Runs on the GPU machine (the device tool), from the repository root, after gather_packages.sh
# filled .device/debs on a Debian machine:
#   run(command="scripts/device/build_and_test.sh", carry=[".device"])
# Unpacks the packages into .device/prefix, configures chorus against the LibTorch inside the image's
# PyTorch wheel (CUDA), builds the GPU tests, the main example and bench_gpu with 16 jobs, then runs
# `ctest -L gpu`, the main example with device=cuda and bench_gpu. Logs go under $OUT (or
# .device/out); the summary is printed last.
#   --configure-only   stops after cmake (checks the toolchain in seconds)
#   --skip-example     leaves out the main example run
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${OUT:-$root/.device/out}"
prefix="$root/.device/prefix"
build="$root/build-device"
mkdir -p "$out" "$prefix"
summary="$out/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
fail() { note "FAILED: $*"; tail -40 "$out/$2.log" 2>/dev/null; cat "$summary"; exit 1; }

configure_only=0 skip_example=0
for arg in "$@"; do
  case "$arg" in
    --configure-only) configure_only=1 ;;
    --skip-example) skip_example=1 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

# 1. The Debian packages, unpacked (not installed) into a prefix of their own.
shopt -s nullglob
debs=("$root"/.device/debs/*.deb)
[ ${#debs[@]} -gt 0 ] || { echo "no packages in .device/debs: run scripts/device/gather_packages.sh first" >&2; exit 2; }
for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$prefix"; done
lib="$prefix/usr/lib/x86_64-linux-gnu"
export PATH="$prefix/usr/bin:$PATH"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# pkg-config reads only the prefix's .pc files and maps their /usr paths into the prefix.
export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$prefix/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$prefix"

# 2. The toolchain: the wheel's LibTorch, and a compiler the build accepts (clang++ >= 16 or g++ >= 13).
python="${PYTHON:-python3}"
torch_cmake="$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')" || {
  echo "no PyTorch in $python" >&2; exit 2; }
note "torch: $("$python" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")')"
cxx=""
for candidate in clang++-19 clang++-18 clang++ g++-14 g++-13 g++; do
  command -v "$candidate" >/dev/null || continue
  version="$("$candidate" -dumpversion | cut -d. -f1)"
  case "$candidate" in
    clang*) [ "$version" -ge 16 ] && cxx="$candidate" ;;
    *) [ "$version" -ge 13 ] && cxx="$candidate" ;;
  esac
  [ -n "$cxx" ] && break
done
[ -n "$cxx" ] || { echo "no clang++ >= 16 or g++ >= 13 here" >&2; exit 2; }
note "compiler: $cxx $("$cxx" -dumpversion); cmake $(cmake --version | head -1 | awk '{print $3}'); nvcc $(nvcc --version 2>/dev/null | tail -2 | head -1)"

# 3. Configure and build what the GPU checks need.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$torch_cmake;$prefix/usr" -DProtobuf_PROTOC_EXECUTABLE="$prefix/usr/bin/protoc" \
  -DPKG_CONFIG_EXECUTABLE="$prefix/usr/bin/pkgconf" -DCHORUS_INSTALL=OFF >"$out/configure.log" 2>&1 \
  || fail "configure (configure.log)" configure
note "configured: $build"
[ "$configure_only" -eq 1 ] && { cat "$summary"; exit 0; }
start=$(date +%s)
ninja -C "$build" -j 16 gpu_models_tests gpu_recipes_tests bench_gpu sft_then_gspo chorus-node >"$out/build.log" 2>&1 \
  || fail "build (build.log)" build
note "built in $(( $(date +%s) - start )) s"

# 4. The checks.
(cd "$build" && ctest -L gpu --output-on-failure --timeout 600) >"$out/ctest_gpu.log" 2>&1
status=$?
note "$(grep -E 'tests passed|tests failed' "$out/ctest_gpu.log" | tail -1) (ctest -L gpu: ctest_gpu.log)"
grep -E "relative error|log-prob gap" "$out/ctest_gpu.log" | tee -a "$summary"
if [ "$skip_example" -eq 0 ]; then
  (cd "$root" && "$build/examples/sft_then_gspo/sft_then_gspo" --set device=cuda --output "$out/main_job") \
    >"$out/main_job.log" 2>&1 || status=1
  grep -E "^(EVAL|STAGES)" "$out/main_job.log" | tee -a "$summary"
fi
(cd "$root" && "$build/bench/gpu/bench_gpu") >"$out/bench_gpu.log" 2>&1 || status=1
grep -E "^BENCH|^gpu " "$out/bench_gpu.log" | tee -a "$summary"
echo "---- summary"
cat "$summary"
exit $status
