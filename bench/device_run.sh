#!/usr/bin/env bash
# The one script run on the GPU machine: versions, build with CUDA, the test suite (CPU and
# CUDA), compute-sanitizer memcheck, the GPU benchmark. Keeps going after a failed step and
# exits non-zero at the end if any step failed. Everything is also written to
# $OUT/device_log.txt ($OUT, else bench/results). About 6-8 minutes on an H100; the steps
# share a budget of DEVICE_RUN_BUDGET_S seconds (default 570, under a 10-minute device call),
# so the summary is always written.
#
#     bash bench/device_run.sh
set -u -o pipefail
cd "$(dirname "$0")/.."

out_dir="${OUT:-bench/results}"
mkdir -p "$out_dir"
log="$out_dir/device_log.txt"
: >"$log"
export PYTHONUNBUFFERED=1
failed=()
deadline=$((SECONDS + ${DEVICE_RUN_BUDGET_S:-570}))

# run_step NAME SECONDS COMMAND...: runs COMMAND for at most SECONDS (and never past the
# deadline), logs it, and records a failure.
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

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

run_step versions 60 bash -c 'nvidia-smi; nvcc --version; cmake --version | head -1
  python3 -c "import sys, torch; print(sys.version); print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda, torch.cuda.get_device_name())"'
run_step build 240 env TWINOP_CUDA=ON TWINOP_TF=OFF python3 -m pip install --no-build-isolation --no-deps .
# The CUDA tests first, then the CPU tests of the bindings the GPU machine has (no TF there);
# the report and build tests are left to CI, which runs them on every change.
run_step pytest 240 python3 -m pytest -q -rs tests/test_cuda.py tests/test_torch.py tests/test_numpy.py tests/test_torch_integration.py
run_step memcheck 150 "$sanitizer" --tool memcheck --error-exitcode 1 python3 bench/sanitize_gpu.py
run_step bench 240 python3 bench/bench_gpu.py --out "$out_dir"

if [ ${#failed[@]} -eq 0 ]; then
  echo "=== device_run: all steps passed" | tee -a "$log"
  exit 0
fi
echo "=== device_run: FAILED: ${failed[*]}" | tee -a "$log"
exit 1
