#!/usr/bin/env bash
# Builds twinop with AddressSanitizer and UndefinedBehaviorSanitizer (TWINOP_SANITIZE) in a build
# directory and prefix of their own, and runs tests with the sanitizer runtimes preloaded into
# Python. Fails on any sanitizer error (out-of-bounds access, use after free, undefined
# behaviour: each stops the process) and on any leak whose allocation LeakSanitizer traces
# through twinop's code (a frame in its library or its sources). CPython never frees some of its
# own objects, by design: leak reports without a twinop frame are counted, not failed on.
#
#     bash bench/sanitize_cpu.sh                  # the numpy binding: its tests (both ops) and the property tests
#     TWINOP_TORCH=ON TWINOP_TF=ON bash bench/sanitize_cpu.sh tests/test_torch.py tests/test_tf.py
#
# The numpy run takes 40-55 s on this project's 2-core machine from a clean build directory
# (README, Reliability); tests/test_sanitize.py runs it in CI. PYTHON (default python) and CXX
# (default g++) pick the interpreter and compiler.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="${TWINOP_SANITIZE_PREFIX:-/tmp/twinop-sanitize}"
reports="$prefix/reports"
python="${PYTHON:-python}"
export CXX="${CXX:-g++}"  # the compiler whose sanitizer runtimes are preloaded below
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(tests/test_numpy.py tests/test_double_backward.py tests/test_out.py tests/test_rms_norm.py
         tests/test_properties.py tests/test_hostile_args.py tests/test_threads.py)
fi

echo "=== build (TWINOP_SANITIZE=address,undefined, torch ${TWINOP_TORCH:-OFF}, tensorflow ${TWINOP_TF:-OFF})"
TWINOP_SANITIZE=address,undefined TWINOP_CUDA=OFF TWINOP_TORCH="${TWINOP_TORCH:-OFF}" TWINOP_TF="${TWINOP_TF:-OFF}" \
  TWINOP_TORCH_STABLE=OFF TWINOP_JAX=OFF \
  "$python" -m pip install -q --no-deps --no-build-isolation --ignore-installed --prefix "$prefix" -C build-dir=build/sanitize \
  -C install.strip=false .  # keep -g, for the reports' file:line
site="$("$python" -c 'import sys, sysconfig; print(sysconfig.get_path("platlib", vars={"platbase": sys.argv[1]}))' "$prefix")"

echo "=== tests under ASan and UBSan: ${tests[*]}"
rm -rf "$reports" && mkdir -p "$reports"
# A framework whose op is not built is hidden from the tests (as on a machine without it), so its
# tests skip instead of importing it under the sanitizers for nothing.
hidden=()
[ "${TWINOP_TORCH:-OFF}" = OFF ] && hidden+=(torch)
[ "${TWINOP_TF:-OFF}" = OFF ] && hidden+=(tensorflow)
hidden+=(jax)  # not built under the sanitizers: XLA's own runtime would need them too
printf 'import sys\nfor name in "%s".split():\n    sys.modules[name] = None  # import raises ModuleNotFoundError\n' \
  "${hidden[*]:-}" >"$prefix/hide_frameworks.py"
status=0
# halt_on_error: the first error stops the process (--capture=sys: a report written to the file
# descriptor itself is not lost with it). LeakSanitizer's own exit code is off: its
# reports are read below. The runtimes must be loaded before Python's own libraries.
LD_PRELOAD="$($CXX -print-file-name=libasan.so) $($CXX -print-file-name=libubsan.so)" \
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$reports/asan:external_symbolizer_path=$(command -v llvm-symbolizer || true)" \
LSAN_OPTIONS="exitcode=0" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
PYTHONPATH="$site:$prefix" \
  "$python" -m pytest -q -p no:cacheprovider -p hide_frameworks --capture=sys "${tests[@]}" || status=$?

echo "=== sanitizer reports"
"$python" - "$reports" "$status" <<'EOF' || status=1
"""Fails on a sanitizer error, or on a leak with a twinop frame; counts CPython's leaks."""
import glob
import re
import sys

errors, ours, others = [], [], 0
for path in sorted(glob.glob(f"{sys.argv[1]}/*")):
    text = open(path, errors="replace").read()
    if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
        errors.append(f"{path}:\n{text[:6000]}")
    for leak in re.split(r"\n(?=(?:Direct|Indirect) leak of)", text)[1:]:
        if re.search(r"_twinop|/csrc/|/cuda/", leak):  # a frame in twinop's library or sources
            ours.append(leak[:3000])
        else:
            others += 1
print(f"pytest exit status {sys.argv[2]} (an UndefinedBehaviorSanitizer report stops it, above); "
      f"AddressSanitizer errors: {len(errors)}; leaks through twinop's code: {len(ours)}; "
      f"other leak reports (CPython, frameworks): {others}")
for report in errors + ours:
    print(report)
sys.exit(1 if errors or ours else 0)
EOF
exit $status
