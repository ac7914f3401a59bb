"""CPU speed of the half-precision kernels against a copy and against another build, in one process:
y = act(x + b) into a preallocated y, and forward+backward into preallocated y, dx and dbias, for
bfloat16, float16 and float32 (whose math the half types' must leave as it was), through the numpy
binding. The installed twinop and a baseline build (bench/twinop_build.py) take turns call by call,
with a copy of x into y on as many threads as the kernels among them, so a slow spell of the machine
falls on each in turn; each figure is the median over rounds. Prints a markdown table; writes nothing.

    python bench/half_math_cpu.py --baseline DIR [--shape 4096x4096] [--rounds 30] [--threads N] [--clock cpu]

--clock cpu times each call by the process's CPU time instead of the wall clock: on a machine shared
with other jobs it leaves out the time spent waiting for a CPU (with --threads 1, since the copy runs on
one thread then and CPU time adds up the threads').

Targets (issue 25): half-type forward <= 1.5x the copy of x; forward+backward >= 1.8x faster than the
baseline; float32 unchanged within noise.
"""
import argparse
import os
import statistics
import sys
import threading
import time

import ml_dtypes
import numpy as np

import twinop.numpy as tn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twinop_build import load_numpy_module  # noqa: E402

DTYPES = {"bfloat16": np.dtype(ml_dtypes.bfloat16), "float16": np.dtype(np.float16),
          "float32": np.dtype(np.float32)}
ACTIVATIONS = ("gelu", "silu", "gelu_tanh")


def seconds(fn, clock):
    start = clock()
    fn()
    return clock() - start


def threaded_copy(threads):
    """copy(y, x): np.copyto over row blocks, as twinop.numpy runs a call: helper threads started
    for the call (np.copyto lets go of the GIL) and one block on the calling thread, so the memory's
    limit is measured with as many threads as the kernels have. (A ThreadPoolExecutor's copy was
    slower between the kernels' calls: 6.8-9.2 ms against 5.3 ms at 4096 x 4096 float32.)"""
    def copy(y, x):
        blocks = list(zip(np.array_split(y, threads), np.array_split(x, threads)))
        helpers = [threading.Thread(target=np.copyto, args=block) for block in blocks[1:]]
        for helper in helpers:
            helper.start()
        np.copyto(*blocks[0])
        for helper in helpers:
            helper.join()
    return copy


def measure(builds, dtype, act, shape, rounds, clock, copy_x):
    """{(build, pass): median seconds}, pass in copy / forward / forward+backward, the calls in turn."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    bias = rng.standard_normal(shape[-1]).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx, dbias = np.empty_like(x), np.empty_like(x), np.empty_like(bias)
    calls = {("", "copy"): lambda: copy_x(y, x)}
    for name, module in builds.items():
        calls[(name, "forward")] = lambda m=module: m.bias_act(x, bias, act, out=y)
        calls[(name, "forward+backward")] = lambda m=module: (
            m.bias_act(x, bias, act, out=y), m.bias_act_backward(dy, x, bias, act, out=(dx, dbias)))
    for fn in calls.values():  # pages touched, code loaded
        fn()
    times = {key: [] for key in calls}
    order = list(calls)
    for r in range(rounds):
        for key in order[r % len(order):] + order[:r % len(order)]:  # each call first in turn
            times[key].append(seconds(calls[key], clock))
    return {key: statistics.median(t) for key, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a directory holding another build's _twinop_numpy*.so")
    parser.add_argument("--shape", default="4096x4096")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=tn.get_num_threads())
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    shape = tuple(int(n) for n in args.shape.split("x"))
    baseline = load_numpy_module(args.baseline)
    for module in (tn, baseline):
        module.set_num_threads(args.threads)
    builds = {"new": tn, "baseline": baseline}
    copy_x = threaded_copy(args.threads)
    print(f"{shape[0]} x {shape[1]}, {args.threads} threads, median of {args.rounds} rounds, {args.clock} ms\n")
    print("| dtype | act | copy | forward new / baseline | forward of copy, new / baseline "
          "| fwd+bwd new / baseline | fwd+bwd speedup |")
    print("|---|---|---|---|---|---|---|")
    for dtype_name, dtype in DTYPES.items():
        for act in ACTIVATIONS:
            t = measure(builds, dtype, act, shape, args.rounds, clock, copy_x)
            ms = {key: 1e3 * value for key, value in t.items()}
            copy = ms[("", "copy")]
            fwd = (ms[("new", "forward")], ms[("baseline", "forward")])
            both = (ms[("new", "forward+backward")], ms[("baseline", "forward+backward")])
            print(f"| {dtype_name} | {act} | {copy:.2f} | {fwd[0]:.2f} / {fwd[1]:.2f} | "
                  f"{fwd[0] / copy:.2f}x / {fwd[1] / copy:.2f}x | {both[0]:.2f} / {both[1]:.2f} | "
                  f"{both[1] / both[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
