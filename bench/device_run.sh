#!/usr/bin/env bash
# The one script for the GPU machine: one device call (10 minutes at most) that proves every
# CUDA path and brings back the GPU numbers.
#
#     bash bench/device_run.sh
#
# Steps, most important first, each with a time limit (sized from the first run on an H200,
# bench/results/h200-2026-11-27: build 30 s, headline 25 s, checks 150 s with the stable-ABI
# tests the longest, sizes 33 s, jax 32 s, report 85 s; RMSNorm's kernels and benchmark since,
# estimated: build +25 s, bench-rms 12 torch.compile compilations of about 5 s); the limits of
# the steps run add up to at most the budget, DEVICE_RUN_BUDGET_S (default 560 s: with a few
# seconds' grace for each killed step, under a 10-minute call), checked before anything runs:
#   versions        the GPU, driver, nvcc, Python, torch and jax                          15 s
#   build           pip install . with CUDA (TWINOP_CUDA_ARCHS, default 90), no TensorFlow, 70 s
#                   from the system's CUDA toolkit, or, where the machine has none (no nvcc
#                   on PATH) or DEVICE_RUN_TOOLKIT=pip asks, from pip's: requirements-cuda.txt
#                   installed first (offline: PIP_NO_INDEX=1 PIP_FIND_LINKS=<carried wheels>)
#   bench-headline  bench/bench_gpu.py, bias_act at 16384 x 8192, bfloat16 first          40 s
#   bench-rms       bench/bench_gpu.py, RMSNorm at 16384 x 8192, 1024 x 65536 and          90 s
#                   64 x 262144: its targets
#   checks          at once, each its own process (correctness, no timing):             210 s
#                   pytest-cuda      tests/test_cuda.py, tests/test_cuda_rms_norm.py
#                   pytest-jax-cuda  tests/test_jax_cuda.py
#                   memcheck, racecheck, initcheck   compute-sanitizer over bench/sanitize_gpu.py
#                   stable-abi       bench/device_stable_abi.sh, with the library carried in
#                                    bench/stable_abi/ (its --prepare, on the CPU machine)
#   bench-sizes     bench/bench_gpu.py, bias_act at the other sizes, added to the same files 45 s
#   report          twinop report --device cuda --quick --build none (the build axis,     90 s
#                   clean rebuilds, is measured by CI on the CPU machine)
# and steps that run only when DEVICE_RUN_STEPS names them (a second call's work):
#   bench-jax       bench/bench_gpu_jax.py (bias_act; measured in h200-2026-11-27)         50 s
#   profile         Nsight Compute (ncu) over bench/profile_gpu.py: twinop's kernels and   90 s
#                   torch.compile's at the headline shape, for what limits a missed target
# A step is skipped, and says why, where its script is not in this checkout, where it needs a
# GPU and nvidia-smi lists none, or where compute-sanitizer says the device is not supported;
# any other non-zero exit, or a timeout, is a failure. The script goes on after a failure and
# exits 1 at the end if any step failed (2 if the limits exceed the budget).
#
# Results, written as they come to $OUT (else bench/results/device-run), 6 files (7 with bench-jax,
# 9 with the profile):
#   summary.txt           the versions, then one line per step: status, seconds, why; after
#                         the build's, the CUDA toolkit it used (system or pip, and its version)
#   device_log.txt        every step's output
#   bench_gpu.json, bench_gpu.md   rewritten after each shape and dtype measured
#   jax_gpu.json          bench/bench_gpu_jax.py's results
#   report.tar.gz         the report's REPORT.md, results.json and plots
#   stable_abi_log.txt    bench/device_stable_abi.sh's log
#   ncu_profile.txt, ncu_profile.ncu-rep   the profile step's details page and its report
#
# A second call on the still-warm machine can rerun some steps (the build stays installed):
#     DEVICE_RUN_STEPS="bench-sizes report" bash bench/device_run.sh
#     DEVICE_RUN_STEPS="bench-jax profile" bash bench/device_run.sh
# On a machine without a GPU the same script runs the control flow: GPU-only steps are skipped
# and the GPU tests skip themselves. DEVICE_RUN_PYTHON (default python3) picks the Python, and
# DEVICE_RUN_PIP_ARGS is added to the build's pip install (e.g. --prefix DIR), and DEVICE_RUN_LIMITS
# overrides steps' limits (e.g. "versions:2 report:60").
set -u -o pipefail
cd "$(dirname "$0")/.."

python=${DEVICE_RUN_PYTHON:-python3}
out_dir=${OUT:-bench/results/device-run}
budget=${DEVICE_RUN_BUDGET_S:-560}
selected=${DEVICE_RUN_STEPS:-all}
mkdir -p "$out_dir"
log="$out_dir/device_log.txt"
summary="$out_dir/summary.txt"
: >"$log"
: >"$summary"
work=$(mktemp -d /tmp/device-run-XXXXXX)
export PYTHONUNBUFFERED=1
failed=()

# NAME:LIMIT in the order they run; OPT_IN steps run only where DEVICE_RUN_STEPS names them.
STEPS=(versions:15 build:70 bench-headline:40 bench-rms:90 checks:210 bench-sizes:45 report:90 bench-jax:50
  profile:90)
OPT_IN=" bench-jax profile "
for override in ${DEVICE_RUN_LIMITS:-}; do
  for i in "${!STEPS[@]}"; do
    if [ "${STEPS[$i]%%:*}" = "${override%%:*}" ]; then STEPS[$i]=$override; fi
  done
done
HEADLINE=16384x8192
OTHER_SIZES=1024x1024,4096x1024,4096x4096,8192x8192

wanted() {
  if [ "$selected" = all ]; then [[ "$OPT_IN" != *" $1 "* ]]; else [[ " $selected " == *" $1 "* ]]; fi
}

total=0
for step in "${STEPS[@]}"; do
  if wanted "${step%%:*}"; then total=$((total + ${step##*:})); fi
done
if [ "$total" -gt "$budget" ]; then
  echo "device_run: the step limits add up to ${total}s, over the budget of ${budget}s" | tee -a "$log" >&2
  exit 2
fi
deadline=$((SECONDS + budget))

has_gpu() { nvidia-smi -L 2>/dev/null | grep -q '^GPU'; }
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)

# record NAME STATUS SECONDS WHY: one line of summary.txt; a failed step makes the exit status 1.
record() {
  printf '%-16s %-8s %5ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$log" >>"$summary"
  if [ "$2" = failed ]; then failed+=("$1"); fi
}

# verdict NAME EXIT SECONDS: records a finished command from its exit status and output.
verdict() {
  local name=$1 status=$2 seconds=$3
  if [ "$status" -eq 0 ]; then
    record "$name" passed "$seconds" ""
  elif [[ $name =~ check$ ]] && grep -qi "device not supported" "$work/$name.log"; then
    record "$name" skipped "$seconds" "compute-sanitizer: device not supported"
  elif [[ $name =~ ^pytest ]] && [ "$status" -eq 5 ] && ! has_gpu; then
    record "$name" skipped "$seconds" "no GPU: its tests skip themselves"
  elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    record "$name" failed "$seconds" "timed out"
  else
    record "$name" failed "$seconds" "exit $status"
  fi
}

# limited LIMIT: LIMIT, or the seconds left before the deadline if fewer.
limited() {
  local left=$((deadline - SECONDS))
  echo $(($1 < left ? $1 : left))
}

# run NAME LIMIT COMMAND...: runs COMMAND for at most LIMIT seconds, its output into the log.
run() {
  local name=$1 limit
  limit=$(limited "$2")
  shift 2
  echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)" | tee -a "$log"
  local started=$SECONDS
  timeout --kill-after=3 "$limit" "$@" 2>&1 | tee "$work/$name.log" >>"$log"
  verdict "$name" "${PIPESTATUS[0]}" $((SECONDS - started))
}

# start NAME LIMIT COMMAND...: runs COMMAND in the background for at most LIMIT seconds; finish
# waits for every started command and then records each, its output into the log.
started_jobs=()
start() {
  local name=$1 limit
  limit=$(limited "$2")
  shift 2
  echo "=== $name started (limit ${limit}s) $(date -u +%H:%M:%S)" | tee -a "$log"
  (
    begin=$(date +%s)
    timeout --kill-after=3 "$limit" "$@" >"$work/$name.log" 2>&1
    echo "$? $(($(date +%s) - begin))" >"$work/$name.status"
  ) &
  started_jobs+=("$name")
}
finish() {
  wait
  local name status seconds
  for name in "${started_jobs[@]}"; do
    echo "=== $name" >>"$log"
    cat "$work/$name.log" >>"$log"
    read -r status seconds <"$work/$name.status"
    verdict "$name" "$status" "$seconds"
  done
  started_jobs=()
}

# skip NAME WHY
skip() { record "$1" skipped 0 "$2"; }

step_versions() {
  run versions "$1" bash -c '
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "GPU: none (no nvidia-smi)"
    if command -v nvcc >/dev/null; then nvcc --version | tail -1; else echo "nvcc: none (no system CUDA toolkit)"; fi
    XLA_PYTHON_CLIENT_PREALLOCATE=false "$0" - <<"EOF"
import importlib, importlib.metadata, platform
print("Python", platform.python_version())
try:
    print("pip CUDA toolkit: nvcc", importlib.metadata.version("nvidia-cuda-nvcc"))
except importlib.metadata.PackageNotFoundError:
    print("pip CUDA toolkit: none")
for name in ("torch", "jax", "jaxlib"):
    try:
        module = importlib.import_module(name)
    except ImportError:
        print(name, "not installed")
        continue
    print(name, module.__version__, end="")
    if name == "torch":
        print(" CUDA", module.version.cuda, "-", module.cuda.get_device_name() if module.cuda.is_available() else "no GPU")
    elif name == "jax":
        print(" devices", module.devices())
    else:
        print()
EOF' "$python"
  cat "$work/versions.log" >>"$summary"
  echo >>"$summary"
}

step_build() {
  local toolkit=${DEVICE_RUN_TOOLKIT:-auto}
  if [ "$toolkit" = auto ]; then
    if command -v nvcc >/dev/null; then toolkit=system; else toolkit=pip; fi
  fi
  # shellcheck disable=SC2016,SC2086  # the inner script's variables are its own; DEVICE_RUN_PIP_ARGS is a list
  run build "$1" env TWINOP_CUDA=ON TWINOP_TF=OFF TWINOP_CUDA_ARCHS="${TWINOP_CUDA_ARCHS:-90}" \
    TWINOP_CUDA_TOOLKIT="${toolkit^^}" bash -c '
      python=$1
      shift
      if [ "$TWINOP_CUDA_TOOLKIT" = PIP ]; then "$python" -m pip install -q -r requirements-cuda.txt || exit; fi
      "$python" -m pip install --no-build-isolation --no-deps "$@" . || exit
      "$python" -c "import twinop._build_info as info; print(\"CUDA toolkit:\", info.CUDA_TOOLKIT)" || true
    ' build "$python" ${DEVICE_RUN_PIP_ARGS:-}
  grep -h '^CUDA toolkit: ' "$work/build.log" >>"$summary"
}

step_bench_headline() {
  if ! has_gpu; then skip bench-headline "no GPU"; return; fi
  run bench-headline "$1" "$python" bench/bench_gpu.py --ops bias_act --shapes "$HEADLINE" --out "$out_dir"
}

step_bench_rms() {
  if ! has_gpu; then skip bench-rms "no GPU"; return; fi
  run bench-rms "$1" "$python" bench/bench_gpu.py --ops rms_norm --append --out "$out_dir"
}

step_checks() {
  start pytest-cuda "$1" "$python" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_cuda_rms_norm.py
  if [ -f tests/test_jax_cuda.py ]; then
    # jax takes 75% of the GPU's memory at its start unless told otherwise: the others run beside it.
    start pytest-jax-cuda "$1" env XLA_PYTHON_CLIENT_PREALLOCATE=false \
      "$python" -m pytest -q -rs -p no:cacheprovider tests/test_jax_cuda.py
  else
    skip pytest-jax-cuda "tests/test_jax_cuda.py is not in this checkout"
  fi
  for tool in memcheck racecheck initcheck; do
    if ! has_gpu; then
      skip "$tool" "no GPU"
    elif [ ! -x "$sanitizer" ]; then
      skip "$tool" "compute-sanitizer not found"
    else
      start "$tool" "$1" "$sanitizer" --tool "$tool" --error-exitcode 1 "$python" bench/sanitize_gpu.py
    fi
  done
  if [ ! -f bench/device_stable_abi.sh ]; then
    skip stable-abi "bench/device_stable_abi.sh is not in this checkout"
  elif [ ! -f "${STABLE_DIR:-bench/stable_abi}/_twinop_torch_stable.so" ]; then
    skip stable-abi "no carried library: run bench/device_stable_abi.sh --prepare here, carry bench/stable_abi"
  else
    mkdir -p "$work/stable-abi"
    start stable-abi "$1" env OUT="$work/stable-abi" DEVICE_STABLE_BUDGET_S=$(($(limited "$1") - 10)) \
      bash bench/device_stable_abi.sh
  fi
  finish
  if [ -f "$work/stable-abi/stable_abi_log.txt" ]; then cp "$work/stable-abi/stable_abi_log.txt" "$out_dir/"; fi
}

step_bench_sizes() {
  if ! has_gpu; then skip bench-sizes "no GPU"; return; fi
  run bench-sizes "$1" "$python" bench/bench_gpu.py --ops bias_act --shapes "$OTHER_SIZES" --append --out "$out_dir"
}

step_bench_jax() {
  if [ ! -f bench/bench_gpu_jax.py ]; then skip bench-jax "bench/bench_gpu_jax.py is not in this checkout"; return; fi
  if ! has_gpu; then skip bench-jax "no GPU"; return; fi
  run bench-jax "$1" "$python" bench/bench_gpu_jax.py --out "$work/jax"
  if [ -f "$work/jax/jax_gpu.json" ]; then cp "$work/jax/jax_gpu.json" "$out_dir/"; fi
}

step_report() {
  if ! has_gpu; then skip report "no GPU"; return; fi
  run report "$1" "$python" -m twinop.cli report --device cuda --quick --build none --out "$work/report"
  if [ -d "$work/report" ]; then tar -czf "$out_dir/report.tar.gz" -C "$work" report; fi
}

step_profile() {
  if ! has_gpu; then skip profile "no GPU"; return; fi
  if [ ! -x "$ncu" ]; then skip profile "ncu not found"; return; fi
  # Both suspects for a forward short of copy: too few bytes in flight (memory, occupancy, waves,
  # stalls) and too many instructions for bfloat16 (compute workload, scheduler issue rate).
  run profile "$1" "$ncu" --kernel-name "regex:bias_act|sum_partial|triton" --section SpeedOfLight \
    --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats --section WarpStateStats \
    --section ComputeWorkloadAnalysis --section SchedulerStats \
    --export "$out_dir/ncu_profile" --force-overwrite "$python" bench/profile_gpu.py
  cp "$work/profile.log" "$out_dir/ncu_profile.txt"
}

for step in "${STEPS[@]}"; do
  name=${step%%:*}
  if wanted "$name"; then "step_${name//-/_}" "${step##*:}"; fi
done
rm -rf "$work"

if [ ${#failed[@]} -eq 0 ]; then
  echo "=== device_run: no step failed" | tee -a "$log"
  cat "$summary"
  exit 0
fi
echo "=== device_run: FAILED: ${failed[*]}" | tee -a "$log"
cat "$summary"
exit 1
