"""CPU speed of RMSNorm (issue 26's targets): twinop's kernels against a copy of x and against
PyTorch's own RMSNorm, forward and forward+backward, in one process. Every case takes its turn
call by call (a round calls each once, starting one further along each round), so a slow spell of
the machine falls on each in turn; each figure is the median over rounds. Prints a markdown table
and the targets; writes nothing.

    python bench/rms_norm_cpu.py [--shape 4096x4096] [--rounds 30] [--dtypes float32,bfloat16]

Cases: "copy of x" (into a preallocated tensor: the memory's limit for a forward into preallocated
outputs) and "clone of x" (into a new one: the limit for a forward as called, which pays for its
output's fresh pages); twinop into preallocated outputs (numpy's out=; its backward allocates dx and
dweight and recomputes rstd, as numpy's rms_norm_backward does) and as called
(torch.ops.twinop.rms_norm and its backward op; twinop.torch.rms_norm with autograd); F.rms_norm
eager, with autograd; and torch.compile of the composition x * rsqrt(mean(x^2) + eps) * w, with
autograd.

Targets: forward <= 1.3x the copy of x (as called: the clone of x); forward+backward ahead of
F.rms_norm eager and of torch.compile of the composition, into preallocated outputs and as called.
"""
import argparse
import os
import statistics
import time

# twinop.numpy runs on its own threads, between torch calls: torch's OpenMP threads spin-wait after
# each call and took the two cores from it (numpy out= float32 forward 1.55x the copy, 1.07x with them
# asleep: the 2-core Intel Xeon of bench/results/cpu-2cores-2026-12-08).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import ml_dtypes
import numpy as np
import torch
import torch.nn.functional as F

import twinop.numpy as tn
import twinop.torch as tt

EPS = 1e-6
NUMPY_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


def composition(x, w):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype) * w


def cases(shape, dtype_name):
    """{(case, pass): a call}, pass in forward / forward+backward."""
    dtype = getattr(torch, dtype_name)
    gen = torch.Generator().manual_seed(0)
    x, dy = (torch.randn(shape, generator=gen).to(dtype) for _ in range(2))
    w = torch.randn(shape[-1], generator=gen).to(dtype)
    y = torch.empty_like(x)
    nx, nw, ndy, ny = (t.view(torch.int16 if dtype == torch.bfloat16 else dtype).numpy()
                       .view(NUMPY_DTYPES[dtype_name]) for t in (x, w, dy, y))
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
    compiled = torch.compile(composition)

    def autograd(fn):
        def call():
            xg.grad = wg.grad = None
            fn(xg, wg).backward(dy)
        return call

    def raw_ops():
        out, rstd = torch.ops.twinop.rms_norm(x, w, EPS, 0.0)
        return torch.ops.twinop.rms_norm_backward(dy, x, rstd, w, 0.0)

    return {
        ("copy of x", "forward"): lambda: y.copy_(x),
        ("clone of x", "forward"): lambda: x.clone(),
        ("twinop numpy out=", "forward"): lambda: tn.rms_norm(nx, nw, EPS, out=ny),
        ("twinop torch op", "forward"): lambda: torch.ops.twinop.rms_norm(x, w, EPS, 0.0),
        ("F.rms_norm eager", "forward"): lambda: F.rms_norm(x, (shape[-1],), w, EPS),
        ("torch.compile", "forward"): lambda: compiled(x, w),
        ("twinop numpy out=", "forward+backward"): lambda: (tn.rms_norm(nx, nw, EPS, out=ny),
                                                            tn.rms_norm_backward(ndy, nx, nw, EPS)),
        ("twinop torch op", "forward+backward"): raw_ops,
        ("twinop.torch autograd", "forward+backward"): autograd(lambda a, b: tt.rms_norm(a, b, EPS)),
        ("F.rms_norm eager", "forward+backward"): autograd(lambda a, b: F.rms_norm(a, (shape[-1],), b, EPS)),
        ("torch.compile", "forward+backward"): autograd(compiled),
    }


def measure(calls, rounds):
    for fn in calls.values():  # compiled, pages touched
        fn(), fn()
    times = {key: [] for key in calls}
    order = list(calls)
    for r in range(rounds):
        for key in order[r % len(order):] + order[:r % len(order)]:
            start = time.perf_counter()
            calls[key]()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="4096x4096")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.shape.split("x"))
    print(f"RMSNorm {args.shape}, {torch.get_num_threads()} torch threads, {tn.get_num_threads()} numpy threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, median of {args.rounds} rounds (ms)\n")
    print("| dtype | pass | case | ms | / copy of x |\n|---|---|---|---|---|")
    targets = []
    for dtype in args.dtypes.split(","):
        got = measure(cases(shape, dtype), args.rounds)
        copy = got[("copy of x", "forward")]
        for (case, passes), seconds in got.items():
            print(f"| {dtype} | {passes} | {case} | {1e3 * seconds:.2f} | {seconds / copy:.2f} |")
        # Like with like: into preallocated outputs against the copy, as called against the clone.
        for ours, limit in (("twinop numpy out=", "copy of x"), ("twinop torch op", "clone of x")):
            ratio = got[(ours, "forward")] / got[(limit, "forward")]
            targets.append((f"{dtype} {ours} forward <= 1.3x {limit}", ratio <= 1.3, f"{ratio:.2f}x"))
        for ours in ("twinop numpy out=", "twinop torch op", "twinop.torch autograd"):
            for rival in ("F.rms_norm eager", "torch.compile"):
                a, b = got[(ours, "forward+backward")], got[(rival, "forward+backward")]
                targets.append((f"{dtype} {ours} forward+backward ahead of {rival}", a < b, f"{b / a:.2f}x its speed"))
    print("\n| target | | |\n|---|---|---|")
    for name, ok, detail in targets:
        print(f"| {name} | {'PASS' if ok else 'MISS'} | {detail} |")


if __name__ == "__main__":
    main()
