"""CPU time of jax.jit(jax.grad(...)) through twinop.jax.bias_act, the installed twinop against
another install of it (a baseline, e.g. main before a change), in turns: each round runs one process
per build, baseline and installed taking the first place in turn, so a slow spell of the machine
falls on each. A process times the compiled gradient's calls and prints their median; each figure
is the median over rounds. Prints a markdown table; writes nothing.

    python bench/jax_grad_cpu.py --baseline DIR [--shape 4096x4096] [--rounds 8] [--calls 15]

Make a baseline from another checkout, its JAX binding alone (a few minutes):
    pip install --no-deps --no-build-isolation --target DIR -C cmake.define.TWINOP_TORCH=OFF \\
        -C cmake.define.TWINOP_TF=OFF -C cmake.define.TWINOP_CUDA=OFF CHECKOUT

Target (issue 24): the gradient through the primitives' transpose no slower than through the
custom_vjp it replaced (one fused backward call either way).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

# Run in each process: the gradient of sum(bias_act(x, b) * dy) in x and b, compiled once.
CHILD = """
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
import twinop.jax as tj
rows, cols, act, dtype, calls = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
x, b, dy = (jnp.asarray(rng.standard_normal(s).astype(dtype)) for s in ((rows, cols), (cols,), (rows, cols)))
grad = jax.jit(jax.grad(lambda x, b: jnp.sum(tj.bias_act(x, b, act) * dy), argnums=(0, 1)))
jax.block_until_ready(grad(x, b))
times = []
for _ in range(calls):
    start = time.perf_counter()
    jax.block_until_ready(grad(x, b))
    times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"median_s": times[len(times) // 2], "file": tj.__file__}))
"""


def run(pythonpath, args):
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else dict(os.environ)
    if not pythonpath:
        env.pop("PYTHONPATH", None)
    spec = json.dumps([args.rows, args.cols, args.act, args.dtype, args.calls])
    out = subprocess.run([sys.executable, "-c", CHILD, spec], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="a folder twinop was installed into with --target")
    parser.add_argument("--shape", default="4096x4096")
    parser.add_argument("--act", default="gelu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()
    args.rows, args.cols = (int(n) for n in args.shape.split("x"))
    builds = {"baseline": args.baseline, "installed": ""}
    times = {name: [] for name in builds}
    files = {}
    for r in range(args.rounds):
        order = list(builds) if r % 2 == 0 else list(reversed(builds))
        for name in order:
            result = run(builds[name], args)
            times[name].append(result["median_s"])
            files[name] = result["file"]
    if files["baseline"] == files["installed"]:
        raise SystemExit(f"both builds imported {files['baseline']}: is --baseline a --target install?")
    base, new = (statistics.median(times[name]) for name in ("baseline", "installed"))
    print(f"jax.jit(jax.grad(sum(bias_act(x, b, {args.act!r}) * dy))), {args.dtype} {args.shape}, "
          f"median of {args.rounds} rounds x {args.calls} calls")
    print("| build | twinop imported from | median ms |\n|---|---|---|")
    for name, value in (("baseline", base), ("installed", new)):
        print(f"| {name} | `{files[name]}` | {1e3 * value:.2f} |")
    print(f"\ninstalled / baseline = {new / base:.3f}")


if __name__ == "__main__":
    main()
