#!/usr/bin/env bash
# The stable-ABI torch op library, built on one torch, loaded and tested on another: on the GPU
# machine (torch 2.11 there), loads the _twinop_torch_stable.so built on the CPU machine against
# torch 2.13 (with its CUDA kernels), and runs the torch tests with it: tests/test_cuda.py and
# tests/test_cuda_rms_norm.py, then the CUDA-free ones. A torch op library does not depend on the
# Python version; the rest of twinop does (the numpy module), so that is built here, without any
# torch op.
#
#     bash bench/device_stable_abi.sh --prepare   # on the CPU machine: build the library to carry
#     bash bench/device_stable_abi.sh             # on the GPU machine
#
# --prepare writes bench/stable_abi/_twinop_torch_stable.so and bench/stable_abi/built_with.txt
# (git-ignored: carry them to the GPU machine). The run expects them there (STABLE_DIR overrides
# the folder), writes $OUT/stable_abi_log.txt ($OUT, else bench/results), keeps going after a
# failed step and exits non-zero if any failed. The steps share DEVICE_STABLE_BUDGET_S seconds
# (default 360).
set -u -o pipefail
cd "$(dirname "$0")/.."

stable_dir="${STABLE_DIR:-bench/stable_abi}"
library="$stable_dir/_twinop_torch_stable.so"

if [ "${1:-}" = "--prepare" ]; then
  set -e
  build=$(mktemp -d /tmp/twinop-stable-abi-build-XXXXXX)
  python3 -c "import torch; print('torch', torch.__version__)"
  cmake -S . -B "$build" -G Ninja -DTWINOP_TORCH=OFF -DTWINOP_TF=OFF -DTWINOP_TORCH_STABLE=ON -DTWINOP_CUDA=ON \
    -DPython_EXECUTABLE="$(command -v python3)" -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
    | grep "build summary"
  cmake --build "$build" --target _twinop_torch_stable
  mkdir -p "$stable_dir"
  cp "$build/_twinop_torch_stable.so" "$library"
  python3 - "$build/_build_info.py" "$library" >"$stable_dir/built_with.txt" <<'EOF'
import hashlib, runpy, sys
info = runpy.run_path(sys.argv[1])
print(f"TORCH_STABLE_TARGET = {info['TORCH_STABLE_TARGET']!r}")
print(f"TORCH_STABLE_BUILT_WITH = {info['TORCH_STABLE_BUILT_WITH']!r}")
# Named apart from WITH_CUDA and CUDA_ARCHS: those describe the twinop it is dropped into.
print(f"TORCH_STABLE_WITH_CUDA = {info['WITH_CUDA']!r}")
print(f"TORCH_STABLE_CUDA_ARCHS = {info['CUDA_ARCHS']!r}")
print(f"SHA256 = {hashlib.sha256(open(sys.argv[2], 'rb').read()).hexdigest()!r}")
EOF
  cat "$stable_dir/built_with.txt"
  rm -rf "$build"
  exit 0
fi

out_dir="${OUT:-bench/results}"
mkdir -p "$out_dir"
log="$out_dir/stable_abi_log.txt"
: >"$log"
export PYTHONUNBUFFERED=1
failed=()
deadline=$((SECONDS + ${DEVICE_STABLE_BUDGET_S:-360}))

# run_step NAME SECONDS COMMAND...: as in bench/device_run.sh.
run_step() {
  local name=$1 limit=$2
  shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 10 ]; then
    echo "=== $name: skipped, no time left" | tee -a "$log"
    failed+=("$name (no time left)")
    return
  fi
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)" | tee -a "$log"
  local started=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  local status=${PIPESTATUS[0]}
  echo "=== $name: exit $status after $((SECONDS - started))s" | tee -a "$log"
  if [ "$status" -ne 0 ]; then failed+=("$name (exit $status)"); fi
}

if [ ! -f "$library" ] || [ ! -f "$stable_dir/built_with.txt" ]; then
  echo "=== device_stable_abi: no $library (or its built_with.txt): run 'bash bench/device_stable_abi.sh --prepare' on the CPU machine and carry $stable_dir" | tee -a "$log"
  exit 1
fi

# twinop without any torch op (its Python package and the numpy module, for this Python), then
# the carried library dropped into it, with what it was built with appended to _build_info.py.
# --ignore-installed: with --prefix alone, pip uninstalls a twinop already installed in the
# machine's Python (device_run.sh's build, which its later steps use).
export prefix library stable_dir
prefix=$(mktemp -d /tmp/twinop-stable-abi-XXXXXX)
site=$(python3 -c "import sysconfig, sys; print(sysconfig.get_path('platlib', vars={'base': sys.argv[1], 'platbase': sys.argv[1]}))" "$prefix")
export site
export PYTHONPATH="$site" TWINOP_TORCH_ABI=stable

run_step versions 60 bash -c 'nvidia-smi -L; python3 -c "import sys, torch; print(sys.version); print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda, torch.cuda.get_device_name())"'
run_step install 180 bash -c 'TWINOP_TORCH=OFF TWINOP_TORCH_STABLE=OFF TWINOP_TF=OFF TWINOP_CUDA=OFF \
    python3 -m pip install -q --no-build-isolation --no-deps --ignore-installed --prefix "$prefix" -C build-dir="$prefix/build" . &&
  cp "$library" "$site/twinop/" &&
  { echo "# The carried library (bench/device_stable_abi.sh):"; cat "$stable_dir/built_with.txt"; } >>"$site/twinop/_build_info.py"'
run_step load 60 python3 -c "
import torch, twinop._build_info as info, twinop.torch as tt
print('loaded', tt._library.PATH, 'ABI', tt.ABI, 'built with torch', info.TORCH_STABLE_BUILT_WITH, 'sha256', info.SHA256)
print('into torch', torch.__version__, '- CUDA kernel registered:', torch._C._dispatch_has_kernel_for_dispatch_key('twinop::bias_act', 'CUDA'))
x = torch.randn(64, 4096, device='cuda'); b = torch.randn(4096, device='cuda')
torch.testing.assert_close(tt.bias_act(x, b, 'gelu'), torch.nn.functional.gelu(x + b))
assert tt.ABI == 'stable' and torch.__version__.split('+')[0] != info.TORCH_STABLE_BUILT_WITH.split('+')[0], 'not a cross-version load'
print('cross-version load: ok')"
run_step pytest-cuda 150 python3 -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_cuda_rms_norm.py
# The CUDA-free torch tests (tests/test_torch_stable.py's TORCH_SUITE). This twinop has no TF op,
# and its JAX handlers are CPU-only while jax here defaults to the GPU: both are left out.
run_step pytest-cpu 200 python3 -m pytest -q -rs -p no:cacheprovider -k "not tensorflow and not jax" tests/test_torch.py \
  tests/test_torch_autodiff.py tests/test_torch_integration.py tests/test_double_backward.py tests/test_torch_stable.py
rm -rf "$prefix"

if [ ${#failed[@]} -eq 0 ]; then
  echo "=== device_stable_abi: all steps passed" | tee -a "$log"
  exit 0
fi
echo "=== device_stable_abi: FAILED: ${failed[*]}" | tee -a "$log"
exit 1
