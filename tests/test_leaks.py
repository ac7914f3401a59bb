"""No leaks: every op form of each binding (tests/bindings.py), called thousands of times on good
arguments and on bad ones (a bias of the wrong size, a bad act name: the error paths, the string
argument path), leaves the resident memory of a process of its own where the warm-up left it,
within LIMIT.

Why the bound holds and what it catches: the worker (tests/leak_check.py) runs with glibc's
mmap threshold fixed at 4 KiB, so every buffer of 4 KiB or more is mapped when allocated and
unmapped when freed, and resident memory counts what is alive. (With glibc's default, its
threshold grows at run time, and freed buffers stay in the heap, where a few small long-lived
allocations can pin them: TensorFlow's own BiasAdd, alternating good and failing calls, then
grows ~16 kB a round.) Each call's outputs take at least 16.6 kB (64 x 65 float32), so a leaked
output grows memory by that much a call: over the thousands of calls below, at least 20 times
LIMIT. A small leak is caught once it is LIMIT / calls: 1 kB or less a call in every case, tens
of bytes for numpy and torch.

TensorFlow is measured in two processes, eager calls (with their error paths) and tf.function
calls: with TensorFlow's own ops alone, mixing eager tapes with tf.function calls grows memory
~3 kB a round, a tf.function that raises grows it ~200 B a call, and a failing eager call ~680 B
once the heap's slack is used up, so its eager error paths run every 10th round (tests/leak_check.py).
"""
import json
import os
import subprocess
import sys

import pytest

import bindings

LIMIT = 1 << 20  # bytes of resident memory the measured rounds may add
WORKER = os.path.join(os.path.dirname(__file__), "leak_check.py")

# (binding, calls whose name contains this, warm-up rounds, measured rounds)
RUNS = [
    ("numpy", "", 100, 1000),
    ("torch", "", 200, 300),
    ("tensorflow", "eager", 100, 300),
    ("tensorflow", "tf.function", 100, 600),
    ("jax", "", 30, 100),
]


@pytest.mark.parametrize("binding_name,picked,warmup,rounds", RUNS, ids=[f"{b} {p}".strip() for b, p, *_ in RUNS])
def test_memory_stops_growing(binding_name, picked, warmup, rounds):
    bindings.load(binding_name)  # skips when the binding was not built
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "4096", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, WORKER, binding_name, picked, str(warmup), str(rounds)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    growth = result["after"] - result["before"]
    assert result["calls"] >= 1500
    assert growth <= LIMIT, f"resident memory grew {growth} bytes over {result['calls']} calls"
