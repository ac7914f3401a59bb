"""GPU benchmark of y = gelu(x + b): twinop against the copy ceiling, eager PyTorch and
torch.compile, forward and forward+backward, float32 and bfloat16, all in one process.

Each time is the median over batches of the GPU time per call, taken with CUDA events around
a batch of back-to-back calls (a spin kernel queued first lets the CPU enqueue the whole batch,
so launch overhead stays out of the numbers). Calls rotate over several input sets, together
over 3x the L2 cache, so no call finds its inputs in L2. Effective GB/s counts the fewest bytes
a pass must move: 2N elements for the forward (read x, write y), 5N for forward+backward
(as in shared/notes/baselines.md).

    python bench/bench_gpu.py [--out DIR] [--shapes 16384x8192,4096x1024]
"""
import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import twinop.torch as tt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from tolerances import tolerance  # noqa: E402  (the one tolerance table)

SHAPES = [(1024, 1024), (4096, 1024), (4096, 4096), (8192, 8192), (16384, 8192)]
HEADLINE = (16384, 8192)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
CALLS_PER_BATCH = 10
BATCHES = 9
WARMUP_CALLS = 3
QUEUE_AHEAD_CYCLES = 10_000_000  # a spin kernel of ~5 ms: time for the CPU to queue a batch
FWD_ELEMENTS, FWD_BWD_ELEMENTS = 2, 5  # elements moved per input element, per pass


def gelu_bias(x, b):
    return F.gelu(x + b)


# One compiled function for every dtype and shape: dynamic=False specializes (recompiles) on
# each new shape, dtype and requires_grad; the limit is raised so that none falls back to eager.
torch._dynamo.config.recompile_limit = 64
compiled_gelu_bias = torch.compile(gelu_bias, dynamic=False)


class Rotation:
    """Input sets (x, b, dy: leaves that require grad) cycled through call by call."""

    def __init__(self, shape, dtype, l2_bytes):
        set_bytes = 2 * math.prod(shape) * torch.tensor([], dtype=dtype).element_size()
        count = max(2, math.ceil(3 * l2_bytes / set_bytes))
        self.sets = [self._draw(shape, dtype) for _ in range(count)]
        self.outputs = [torch.empty(shape, device="cuda", dtype=dtype) for _ in range(count)]
        self.calls = 0

    @staticmethod
    def _draw(shape, dtype):
        x = torch.randn(shape, device="cuda", dtype=dtype).requires_grad_()
        b = torch.randn(shape[-1], device="cuda", dtype=dtype).requires_grad_()
        return x, b, torch.randn(shape, device="cuda", dtype=dtype)

    def next(self):
        """(x, b, dy, out) of the next set."""
        i = self.calls % len(self.sets)
        self.calls += 1
        return (*self.sets[i], self.outputs[i])


def ms_per_call(call, rotation):
    """Median over batches of the GPU milliseconds per call; returns (ms, first call seconds)."""
    start_wall = time.perf_counter()
    call(*rotation.next())
    torch.cuda.synchronize()
    first_call_s = time.perf_counter() - start_wall
    for _ in range(WARMUP_CALLS - 1):
        call(*rotation.next())
    torch.cuda.synchronize()
    per_call = []
    for _ in range(BATCHES):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(QUEUE_AHEAD_CYCLES)
        start.record()
        for _ in range(CALLS_PER_BATCH):
            call(*rotation.next())
        end.record()
        end.synchronize()
        per_call.append(start.elapsed_time(end) / CALLS_PER_BATCH)
    return statistics.median(per_call), first_call_s


def forward_cases():
    """name -> call(x, b, dy, out) for one forward pass; x and b are used detached."""
    return {
        "copy (ceiling)": lambda x, b, dy, out: out.copy_(x.detach()),
        "eager F.gelu(x + b)": lambda x, b, dy, out: gelu_bias(x.detach(), b.detach()),
        "torch.compile": lambda x, b, dy, out: compiled_gelu_bias(x.detach(), b.detach()),
        "twinop": lambda x, b, dy, out: tt.bias_act(x.detach(), b.detach(), "gelu"),
    }


def forward_backward_cases():
    """name -> call(x, b, dy, out) for one forward and one backward (dx and dbias)."""

    def through_autograd(fn):
        return lambda x, b, dy, out: torch.autograd.grad(fn(x, b), (x, b), dy)

    def twinop_raw_ops(x, b, dy, out):
        x, b = x.detach(), b.detach()
        torch.ops.twinop.bias_act(x, b, "gelu")
        return torch.ops.twinop.bias_act_backward(dy, x, b, "gelu")

    return {
        "eager F.gelu(x + b)": through_autograd(gelu_bias),
        "torch.compile": through_autograd(compiled_gelu_bias),
        "twinop": through_autograd(lambda x, b: tt.bias_act(x, b, "gelu")),
        "twinop raw ops": twinop_raw_ops,
    }


def max_error_vs_float64(x, b, dy, dtype_name):
    """Checks twinop's y, dx and dbias against float64 eager PyTorch on the same inputs, with
    the tests' tolerances; returns the largest |error| / (atol + rtol |reference|)."""
    x, b = x.detach(), b.detach()
    y = tt.bias_act(x, b, "gelu")
    dx, dbias = torch.ops.twinop.bias_act_backward(dy, x, b, "gelu")
    x64, b64 = x.double().requires_grad_(), b.double().requires_grad_()
    y64 = gelu_bias(x64, b64)
    dx64, dbias64 = torch.autograd.grad(y64, (x64, b64), dy.double())
    worst = 0.0
    for got, want, summed in ((y, y64, 1), (dx, dx64, 1), (dbias, dbias64, x.shape[0])):
        rtol, atol = tolerance(dtype_name, summed)
        ratio = (got.double() - want.detach()).abs() / (atol + rtol * want.detach().abs())
        worst = max(worst, ratio.max().item())
    return worst


def effective_gbps(elements_moved, element_size, ms):
    return elements_moved * element_size / (ms * 1e-3) / 1e9


def run(shapes):
    props = torch.cuda.get_device_properties(0)
    l2_bytes = getattr(props, "L2_cache_size", 50 * 2**20)
    results, checks = [], []
    for dtype_name, dtype in DTYPES.items():
        element_size = torch.tensor([], dtype=dtype).element_size()
        for shape in shapes:
            n = math.prod(shape)
            rotation = Rotation(shape, dtype, l2_bytes)
            checks.append({"dtype": dtype_name, "shape": list(shape),
                           "max_error_over_tolerance": max_error_vs_float64(*rotation.sets[0], dtype_name)})
            for passes, cases, elements in (("fwd", forward_cases(), FWD_ELEMENTS),
                                            ("fwd+bwd", forward_backward_cases(), FWD_BWD_ELEMENTS)):
                for name, call in cases.items():
                    ms, first_call_s = ms_per_call(call, rotation)
                    row = {"dtype": dtype_name, "shape": list(shape), "pass": passes, "case": name,
                           "ms": ms, "GBps": effective_gbps(elements * n, element_size, ms),
                           "first_call_s": first_call_s, "input_sets": len(rotation.sets)}
                    results.append(row)
                    print(f"{dtype_name:<9} {str(shape):<14} {passes:<8} {name:<22} {ms:9.4f} ms "
                          f"{row['GBps']:8.1f} GB/s  (first call {first_call_s:6.2f} s)", flush=True)
            del rotation
            torch.cuda.empty_cache()
    return results, checks


def find(results, dtype, shape, passes, case):
    for row in results:
        if (row["dtype"], tuple(row["shape"]), row["pass"], row["case"]) == (dtype, tuple(shape), passes, case):
            return row["ms"]
    return None


def target_checks(results, checks, shapes):
    """(target, PASS/MISS, numbers) for each target of the project."""
    out = []

    def verdict(ok):
        return "PASS" if ok else "MISS"

    for c in checks:
        out.append((f"{c['dtype']} {tuple(c['shape'])} y, dx, dbias within the test tolerances of float64 eager",
                    verdict(c["max_error_over_tolerance"] <= 1.0),
                    f"max error / tolerance = {c['max_error_over_tolerance']:.3f}"))
    if HEADLINE in shapes:
        for dtype in DTYPES:
            copy_ms = find(results, dtype, HEADLINE, "fwd", "copy (ceiling)")
            fwd_ms = find(results, dtype, HEADLINE, "fwd", "twinop")
            out.append((f"{dtype} fwd at {HEADLINE} >= 90% of copy bandwidth", verdict(fwd_ms <= copy_ms / 0.9),
                        f"twinop {fwd_ms:.4f} ms, copy {copy_ms:.4f} ms: {100 * copy_ms / fwd_ms:.1f}% of copy"))
        copy_ms = find(results, "bfloat16", HEADLINE, "fwd", "copy (ceiling)")
        floor_ms = copy_ms * FWD_BWD_ELEMENTS / FWD_ELEMENTS
        fb_ms = find(results, "bfloat16", HEADLINE, "fwd+bwd", "twinop")
        out.append((f"bfloat16 fwd+bwd at {HEADLINE} <= 1.3x of 5N at copy speed", verdict(fb_ms <= 1.3 * floor_ms),
                    f"twinop {fb_ms:.4f} ms, 5N at copy speed {floor_ms:.4f} ms: {fb_ms / floor_ms:.2f}x"))
    for dtype in DTYPES:
        for shape in shapes:
            if math.prod(shape) < 2**20:
                continue
            for passes in ("fwd", "fwd+bwd"):
                ours = find(results, dtype, shape, passes, "twinop")
                theirs = find(results, dtype, shape, passes, "torch.compile")
                out.append((f"{dtype} {passes} at {shape} faster than torch.compile", verdict(ours < theirs),
                            f"twinop {ours:.4f} ms, torch.compile {theirs:.4f} ms: {theirs / ours:.2f}x"))
    return out


def driver_version():
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def markdown(environment, results, targets):
    lines = [f"# twinop GPU benchmark: {environment['device']}", ""]
    lines += [f"- {key}: {value}" for key, value in environment.items()]
    lines += ["", "Median GPU time per call over CUDA events; effective GB/s counts 2N elements for fwd and 5N for "
              "fwd+bwd. Every torch.compile row's first call (re)compiled: dynamic=False specializes on each shape.",
              "", "## Targets", "", "| target | verdict | numbers |", "|---|---|---|"]
    lines += [f"| {target} | {verdict} | {numbers} |" for target, verdict, numbers in targets]
    lines += ["", "## Results", "", "| dtype | shape | pass | case | ms | GB/s | first call s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dtype']} | {r['shape'][0]}x{r['shape'][1]} | {r['pass']} | {r['case']} | {r['ms']:.4f} "
              f"| {r['GBps']:.1f} | {r['first_call_s']:.2f} |" for r in results]
    return "\n".join(lines) + "\n"


def parse_shapes(text):
    return [tuple(int(d) for d in item.split("x")) for item in text.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="folder for the JSON and markdown")
    parser.add_argument("--shapes", type=parse_shapes, default=SHAPES, help="e.g. 16384x8192,4096x1024")
    args = parser.parse_args()
    started = time.perf_counter()
    environment = {
        "device": torch.cuda.get_device_name(0),
        "driver": driver_version(),
        "torch": torch.__version__,
        "CUDA (torch)": torch.version.cuda,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(environment, flush=True)
    torch.manual_seed(0)
    results, checks = run(args.shapes)
    targets = target_checks(results, checks, args.shapes)
    environment["benchmark wall time s"] = round(time.perf_counter() - started, 1)

    print("\nTargets:")
    for target, verdict, numbers in targets:
        print(f"  {verdict}  {target}: {numbers}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench_gpu.json"), "w") as fh:
        json.dump({"environment": environment, "results": results, "correctness": checks,
                   "targets": [dict(zip(("target", "verdict", "numbers"), t)) for t in targets]}, fh, indent=1)
    with open(os.path.join(args.out, "bench_gpu.md"), "w") as fh:
        fh.write(markdown(environment, results, targets))
    print(f"wrote {args.out}/bench_gpu.json and bench_gpu.md in {environment['benchmark wall time s']} s")


if __name__ == "__main__":
    main()
