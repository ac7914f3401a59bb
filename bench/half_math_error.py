"""How often the CPU kernels' float16 and bfloat16 results are correctly rounded, and their largest
error in ulps, over every finite input value of the dtype beside three biases (tests/half_accuracy.py),
for the installed twinop, a baseline build (bench/twinop_build.py; optional) and PyTorch's own ops in
the dtype (F.gelu(x + b) etc., their autograd for the derivatives). Prints a markdown table; writes
nothing.

    python bench/half_math_error.py [--baseline DIR]
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)
import half_accuracy  # noqa: E402
import twinop.numpy as tn  # noqa: E402
from twinop_build import load_numpy_module  # noqa: E402

ACTIVATIONS = ("gelu", "gelu_tanh", "silu")


def cell(figures, column):
    fraction, largest = figures
    return f"{fraction[column]:.2%} / {largest[column]:.3g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="a directory holding another build's _twinop_numpy*.so")
    args = parser.parse_args()
    builds = {"twinop": tn}
    if args.baseline:
        builds["baseline"] = load_numpy_module(args.baseline)
    names = list(builds) + ["PyTorch"]
    print("Correctly rounded / largest error in ulps, over every finite input value, per bias\n")
    print("| dtype | act | result | bias | " + " | ".join(names) + " |")
    print("|---" * (4 + len(names)) + "|")
    for dtype in ("bfloat16", "float16"):
        x, bias = half_accuracy.inputs(dtype)
        for act in ACTIVATIONS:
            exact = half_accuracy.exact_results(dtype, act)
            ours = {name: half_accuracy.twinop_results(module, x, bias, act) for name, module in builds.items()}
            theirs = half_accuracy.torch_figures(dtype, act)
            for result, order in half_accuracy.RESULTS.items():
                figures = [half_accuracy.figures(ours[name][result], exact[order], dtype) for name in builds]
                figures.append(theirs[result])
                for column, b in enumerate(half_accuracy.BIASES):
                    cells = " | ".join(cell(f, column) for f in figures)
                    print(f"| {dtype} | {act} | {result} | {b:g} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
