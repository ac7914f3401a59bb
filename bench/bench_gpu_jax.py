"""GPU benchmark of y = gelu(x + b) in JAX: twinop's CUDA handlers inside jax.jit against XLA's
own jax.jit fusion of gelu(x + b) (the peer a JAX user would otherwise have), forward and
forward+backward, bfloat16 and float32, with a device copy of x as the ceiling.

Method. JAX offers no CUDA events, and dispatches asynchronously: each time is the median over
batches of the wall time per call of ten back-to-back calls, the batch ending when the last
call's result is ready (twinop.report.gpu_timer). The host queues each call while the GPU runs the previous one,
so at the large sizes this is GPU time; where a call's kernels take less than JAX's dispatch
(tens of microseconds), the dispatch shows. Calls rotate over input sets that together exceed
3x the L2 cache. Effective GB/s counts the fewest bytes a pass must move: 2N elements forward
(read x, write y), 5N forward+backward (as in shared/notes/baselines.md). Before timing, each
shape's results from twinop and from XLA are checked against float64 on the GPU, with the tests'
tolerances.

    python bench/bench_gpu_jax.py --out DIR [--shapes 16384x8192,4096x1024]

Writes DIR/jax_gpu.json after every result, so a run cut short keeps what it measured. Without
a JAX GPU backend it says so and exits 0, measuring nothing.
"""
import argparse
import datetime
import importlib.metadata
import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp

import twinop.jax as tj
from twinop.report import gpu_timer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from tolerances import tolerance  # noqa: E402  (the one tolerance table)

SHAPES = [(16384, 8192), (8192, 8192), (4096, 4096), (1024, 1024)]  # the headline first
DTYPES = ("bfloat16", "float32")
BATCHES = 9
WARMUP_CALLS = 3
L2_BYTES = 50 * 2**20  # an H100's; JAX does not report the L2's size
FWD_ELEMENTS, FWD_BWD_ELEMENTS = 2, 5  # elements moved per input element, per pass


def gelu_bias(x, b):
    return jax.nn.gelu(x + b, approximate=False)


def twinop_bias_act(x, b):
    return tj.bias_act(x, b, "gelu")


def forward_backward(fn):
    """(x, b, dy) -> (y, dx, dbias), as a training step computes them."""
    def run(x, b, dy):
        y, vjp = jax.vjp(fn, x, b)
        return (y, *vjp(dy))
    return run


# name -> (pass, compiled call of (x, b, dy)); x and dy rotate, so no call finds them in L2.
CASES = {
    "copy (ceiling)": ("fwd", jax.jit(lambda x, b, dy: x.copy())),
    "XLA jax.jit(gelu(x + b))": ("fwd", jax.jit(lambda x, b, dy: gelu_bias(x, b))),
    "twinop-jax (jit)": ("fwd", jax.jit(lambda x, b, dy: twinop_bias_act(x, b))),
    "XLA jax.jit(gelu(x + b)) fwd+bwd": ("fwd+bwd", jax.jit(forward_backward(gelu_bias))),
    "twinop-jax (jit) fwd+bwd": ("fwd+bwd", jax.jit(forward_backward(twinop_bias_act))),
}


def input_sets(shape, dtype, gpu, key):
    """(x, b, dy) sets on the GPU, enough that cycling over them outruns the L2 cache."""
    set_bytes = 2 * math.prod(shape) * jnp.dtype(dtype).itemsize
    sets = []
    for _ in range(max(2, math.ceil(3 * L2_BYTES / set_bytes))):
        key, kx, kb, kdy = jax.random.split(key, 4)
        draw = (jax.random.normal(kx, shape), jax.random.normal(kb, shape[-1:]), jax.random.normal(kdy, shape))
        sets.append(tuple(jax.device_put(a.astype(dtype), gpu) for a in draw))
    return sets, key


def ms_per_call(call, sets):
    """Median over batches of the milliseconds per call (gpu_timer.wall_median); and the first
    call's seconds (compile)."""
    calls = iter(range(10**9))

    def next_call():
        return call(*sets[next(calls) % len(sets)])

    start = time.perf_counter()
    jax.block_until_ready(next_call())
    first_call_s = time.perf_counter() - start
    for _ in range(WARMUP_CALLS):
        jax.block_until_ready(next_call())
    return gpu_timer.wall_median(next_call, jax.block_until_ready, BATCHES) * 1e3, first_call_s


def max_error_over_tolerance(fn, x, b, dy, dtype):
    """fn's (y, dx, dbias) against the float64 composition on the same inputs: the largest
    |error| / (atol + rtol |reference|), with the tests' tolerances (<= 1 passes)."""
    want = forward_backward(gelu_bias)(*(a.astype(jnp.float64) for a in (x, b, dy)))
    worst = 0.0
    for got, ref, summed in zip(jax.jit(forward_backward(fn))(x, b, dy), want, (1, 1, x.shape[0])):
        rtol, atol = tolerance(dtype, summed)
        ratio = jnp.abs(got.astype(jnp.float64) - ref) / (atol + rtol * jnp.abs(ref))
        worst = max(worst, float(jnp.max(ratio)))
    return worst


def effective_gbps(elements_moved, itemsize, ms):
    return elements_moved * itemsize / (ms * 1e-3) / 1e9


def write(out_dir, report):
    path = os.path.join(out_dir, "jax_gpu.json")
    with open(path + ".tmp", "w") as fh:
        json.dump(report, fh, indent=1)
    os.replace(path + ".tmp", path)  # never a half-written file


def run(shapes, gpu, out_dir, report):
    key = jax.random.key(0)
    for dtype in DTYPES:
        itemsize = jnp.dtype(dtype).itemsize
        for shape in shapes:
            sets, key = input_sets(shape, dtype, gpu, key)
            for name, fn in (("twinop-jax", twinop_bias_act), ("XLA", gelu_bias)):
                check = {"dtype": dtype, "shape": list(shape), "impl": name,
                         "max_error_over_tolerance": max_error_over_tolerance(fn, *sets[0], dtype)}
                report["correctness"].append(check)
                print(f"check {dtype} {shape} {name}: max error / tolerance {check['max_error_over_tolerance']:.3f}",
                      flush=True)
            for name, (passes, call) in CASES.items():
                ms, first_call_s = ms_per_call(call, sets)
                elements = (FWD_ELEMENTS if passes == "fwd" else FWD_BWD_ELEMENTS) * math.prod(shape)
                row = {"dtype": dtype, "shape": list(shape), "pass": passes, "case": name, "ms": ms,
                       "GBps": effective_gbps(elements, itemsize, ms), "first_call_s": first_call_s,
                       "input_sets": len(sets)}
                report["results"].append(row)
                write(out_dir, report)
                print(f"{dtype:<9} {str(shape):<14} {passes:<8} {name:<34} {ms:9.4f} ms {row['GBps']:8.1f} GB/s "
                      f"(first call {first_call_s:6.2f} s)", flush=True)
            del sets


def summary(results):
    """twinop's time over XLA's fusion, per dtype, shape and pass (below 1: twinop is faster)."""
    ms = {(r["dtype"], tuple(r["shape"]), r["case"]): r["ms"] for r in results}
    out = []
    for (dtype, shape, case), ours in ms.items():
        if case.startswith("twinop-jax"):
            xla = ms.get((dtype, shape, case.replace("twinop-jax (jit)", "XLA jax.jit(gelu(x + b))")))
            if xla:
                out.append({"dtype": dtype, "shape": list(shape), "case": case, "twinop_over_xla": ours / xla})
    return out


def installed(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def parse_shapes(text):
    return [tuple(int(d) for d in item.split("x")) for item in text.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="folder for jax_gpu.json")
    parser.add_argument("--shapes", type=parse_shapes, default=SHAPES, help="e.g. 16384x8192,4096x1024")
    args = parser.parse_args()
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError as error:
        print(f"bench_gpu_jax: skipped, no JAX GPU backend (jax {jax.__version__}: {error})")
        return 0
    from twinop import _build_info

    if not _build_info.WITH_CUDA:
        print("bench_gpu_jax: twinop was built without CUDA: rebuild with TWINOP_CUDA=ON", file=sys.stderr)
        return 1
    jax.config.update("jax_enable_x64", True)  # for the float64 checks; every array's dtype is explicit
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    report = {"environment": {
        "device": gpu.device_kind, "platform": getattr(gpu.client, "platform_version", None),
        **{package: installed(package) for package in ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin")},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "method": "median over batches of wall time per call, back-to-back jitted calls (see the script's docstring)",
    }, "results": [], "correctness": [], "summary": []}
    print(report["environment"], flush=True)
    run(args.shapes, gpu, args.out, report)
    report["summary"] = summary(report["results"])
    report["environment"]["benchmark wall time s"] = round(time.perf_counter() - started, 1)
    write(args.out, report)
    print("\ntwinop-jax time / XLA fusion time:")
    for s in report["summary"]:
        print(f"  {s['dtype']:<9} {'x'.join(map(str, s['shape'])):<11} {s['case']:<26} {s['twinop_over_xla']:.2f}x")
    print(f"wrote {os.path.join(args.out, 'jax_gpu.json')} in {report['environment']['benchmark wall time s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
