"""Calls one binding's op forms (tests/bindings.py) round after round, the error paths too, and
prints the process's resident memory after a warm-up and after the measured rounds, as JSON.
Run by tests/test_leaks.py in a process of its own:

    python tests/leak_check.py BINDING CALLS WARMUP_ROUNDS ROUNDS

CALLS picks the calls whose name contains it ("" for all). A round makes every picked call on good
inputs, then on eager calls also with a bias (weight) of the wrong size and with a bad attribute (an
act name; eps), each of which must raise (for TensorFlow every 10th round: ERROR_ROUNDS_EVERY).
"""
import gc
import json
import os
import sys
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bindings  # noqa: E402
from op_specs import OPS, attrs  # noqa: E402

SHAPE = (64, 65)  # one float32 output is 16.6 kB


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_inputs(binding, row_size):
    """Every input any op takes, float32; the per-feature ones (bias, weight) of row_size."""
    rng = np.random.default_rng(0)
    shapes = {name: (SHAPE if kind == "x" else (row_size,)) for op in OPS.values() for name, kind in op.inputs.items()}
    return SimpleNamespace(**{name: binding.tensor(rng.normal(size=shape).astype(np.float32).astype(np.float64),
                                                   "float32") for name, shape in shapes.items()})


def error_calls(calls):
    # A tf.function that raises grows TensorFlow's memory by ~200 B a call with TensorFlow's own
    # ops too (tf.raw_ops.BiasAdd given a bias of the wrong size), and a bad act fails while
    # tracing, anew on each call: the op's error path is the same kernel code run eagerly.
    return {name: call for name, call in calls.items() if "tf.function" not in name}


# TensorFlow's eager error path leaks with its own ops too: ~680 B a failing call of
# tf.raw_ops.BiasAdd given a bias of the wrong size (TF 2.21; flat over the first ~4,000 calls,
# while the heap's slack takes it, then linear). Its error calls run every 10th round, so that the
# rounds measure twinop's code and not that leak.
ERROR_ROUNDS_EVERY = {"tensorflow": 10}


def one_round(calls, good, bad_row, errors, k, with_errors):
    for call in calls.values():
        call.fn(good, attrs(call.op, k))
    if not with_errors:
        return
    for name, call in error_calls(calls).items():
        for inputs, bad_attrs in ((bad_row, attrs(call.op, k)), (good, OPS[call.op].bad_attrs)):
            try:
                call.fn(inputs, bad_attrs)
            except errors:
                continue
            raise AssertionError(f"{name} accepted bad arguments")


def main(name, picked, warmup_rounds, rounds):
    binding = bindings.load(name)
    calls = {n: call for n, call in binding.calls.items() if picked in n}
    errors = ((ValueError, binding.tf.errors.InvalidArgumentError) if name == "tensorflow"
              else getattr(binding, "argument_errors", (ValueError,)))
    good, bad_row = make_inputs(binding, SHAPE[-1]), make_inputs(binding, SHAPE[-1] + 1)
    every = ERROR_ROUNDS_EVERY.get(name, 1)
    for k in range(warmup_rounds):
        one_round(calls, good, bad_row, errors, k, k % every == 0)
    gc.collect()
    before = resident_bytes()
    for k in range(rounds):
        one_round(calls, good, bad_row, errors, k, k % every == 0)
    gc.collect()
    calls_made = rounds * len(calls) + len(range(0, rounds, every)) * 2 * len(error_calls(calls))
    print(json.dumps({"before": before, "after": resident_bytes(), "calls": calls_made}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
