"""What a tf.function call adds to twinop's TensorFlow op on the CPU, and whether it is paid per op
or per function call: at 4096 x 4096, forward, float32 and bfloat16, each call of

    numpy out=        twinop.numpy.bias_act into an array allocated once (the yardstick)
    TF eager          twinop.tf.bias_act, eagerly
    tf.function x1    a tf.function around one call
    tf.function xK    a tf.function around K calls on K inputs, made to run one after another

is timed per op (a call's time / the ops it runs), interleaved in one process, and divided by numpy
out='s time in the same round. The report's speed verdict times a tf.function of one call; a
model's tf.function holds many ops, which share one function call's fixed cost.

Every array sits on 4 KiB pages (runtime.HEAD_TO_HEAD_ENV, as in the report's rounds): numpy would
otherwise ask for 2 MiB pages for its own and not TensorFlow's.

    python bench/tf_function_cost.py [--rounds 8] [--ops-per-function 4]
"""
import argparse
import os
import statistics
import sys
import time

from twinop.report import runtime

if __name__ == "__main__":  # as a script, not when a test imports it
    assert "numpy" not in sys.modules, "numpy reads NUMPY_MADVISE_HUGEPAGE when it is imported"
    os.environ.update(runtime.HEAD_TO_HEAD_ENV)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ml_dtypes  # noqa: E402, F401  (names bfloat16 for numpy)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import twinop.numpy  # noqa: E402
import twinop.tf  # noqa: E402

SHAPE = (4096, 4096)
ACT = "gelu"
CALLS_PER_ROUND = 9  # per impl and round; the round keeps their median
DTYPES = runtime.DTYPES["quick"]  # the report's: float32 and bfloat16


def one_after_another(xs, bias):
    """K calls of the op, each waiting for the one before (TF would otherwise run them side by side)."""
    ys = []
    for x in xs:
        with tf.control_dependencies(ys[-1:]):
            ys.append(twinop.tf.bias_act(x, bias, ACT))
    return ys


def impls(dtype, ops):
    """{name: call}; each call runs the op `ops` times, each time on an input of its own (none in cache)."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(SHAPE, np.float32).astype(dtype) for _ in range(ops)]
    bias = rng.standard_normal(SHAPE[1], np.float32).astype(dtype)
    outs = [np.empty_like(x) for x in xs]
    tf_xs, tf_bias = [tf.constant(x) for x in xs], tf.constant(bias)
    single = tf.function(lambda x, b: twinop.tf.bias_act(x, b, ACT), autograph=False)
    several = tf.function(one_after_another, autograph=False)
    return {
        "numpy out=": lambda: [twinop.numpy.bias_act(x, bias, ACT, out=y) for x, y in zip(xs, outs)],
        "TF eager": lambda: [twinop.tf.bias_act(x, tf_bias, ACT) for x in tf_xs],
        "tf.function x1": lambda: [single(x, tf_bias) for x in tf_xs],
        f"tf.function x{ops}": lambda: several(tf_xs, tf_bias),
    }


def measure(dtype, ops, rounds):
    """{name: [median ms per op, one per round]}."""
    calls = impls(dtype, ops)
    for call in calls.values():  # traces the tf.functions, pages the outputs in
        call()
        call()
    per_op = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times = []
            for _ in range(CALLS_PER_ROUND):
                start = time.perf_counter()
                call()
                times.append((time.perf_counter() - start) / ops)
            per_op[name].append(statistics.median(times) * 1e3)
    return per_op


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--ops-per-function", type=int, default=4)
    args = parser.parse_args()
    print(f"{SHAPE[0]}x{SHAPE[1]} {ACT} forward, {args.rounds} rounds, {os.cpu_count()} CPUs, "
          f"TensorFlow {tf.__version__}, numpy {np.__version__}")
    print("| dtype | impl | ms per op (median of rounds) | / numpy out= (median, range of rounds) |")
    print("|---|---|---|---|")
    for dtype in DTYPES:
        per_op = measure(dtype, args.ops_per_function, args.rounds)
        yardstick = per_op["numpy out="]
        for name, times in per_op.items():
            ratios = [t / y for t, y in zip(times, yardstick)]
            print(f"| {dtype} | {name} | {statistics.median(times):.2f} | "
                  f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |", flush=True)


if __name__ == "__main__":
    main()
