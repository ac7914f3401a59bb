"""The numpy binding's tests and the property tests under AddressSanitizer (with LeakSanitizer)
and UndefinedBehaviorSanitizer: bench/sanitize_cpu.sh builds the core and the numpy module with
TWINOP_SANITIZE=address,undefined in a build directory and prefix of their own, and runs them
with the runtimes preloaded into Python. 40-55 s on 2 cores; skipped where the compiler has
no sanitizer runtimes or the source tree is not here."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "sanitize_cpu.sh")


def sanitizer_runtimes_present():
    try:
        paths = [subprocess.run(["g++", f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
                 for lib in ("libasan.so", "libubsan.so")]
    except OSError:
        return False
    return all(os.path.isabs(path) and os.path.exists(path) for path in paths)


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "CMakeLists.txt")), reason="needs the source tree")
@pytest.mark.skipif(not sanitizer_runtimes_present(), reason="g++ has no libasan/libubsan here")
def test_numpy_binding_is_clean_under_asan_and_ubsan(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "TWINOP_SANITIZE_PREFIX": str(tmp_path),
           "TWINOP_TORCH": "OFF", "TWINOP_TF": "OFF"}
    done = subprocess.run(["bash", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    report = done.stdout[-8000:] + done.stderr[-4000:]
    assert done.returncode == 0, report
    assert "AddressSanitizer errors: 0; leaks through twinop's code: 0" in done.stdout, report
    assert " passed" in done.stdout and " failed" not in done.stdout, report
