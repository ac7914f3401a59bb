"""A small forward, backward and double backward of every dtype x activation through
torch.ops.twinop on the GPU, and RMSNorm's four ops for every dtype pair, on shapes and
alignments that reach every code path of the kernels, for compute-sanitizer
(bench/device_run.sh runs memcheck, racecheck and initcheck over it):

    compute-sanitizer --tool memcheck --error-exitcode 1 python3 bench/sanitize_gpu.py

PyTorch's caching allocator is switched off here, so each tensor is its own cudaMalloc and
an access one element past a tensor is outside any allocation, where memcheck sees it.
Each CUDA result is also compared with the binding's CPU kernels; exits 1 on a mismatch.
"""
import os
import sys

os.environ.setdefault("PYTORCH_NO_CUDA_MEMORY_CACHING", "1")  # before torch starts CUDA

import torch  # noqa: E402

import twinop.torch  # noqa: E402,F401  (registers torch.ops.twinop)
from twinop import ACTIVATIONS  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from tolerances import tolerance  # noqa: E402  (the one tolerance table)

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16}
# (shape, tensors one element off a 16-byte boundary): element-wise rows (odd or narrower than
# a vector), aligned rows with a partly idle last block of columns, one column group per row (a
# 256-row block reduction), several row blocks, odd widths over several blocks (vector bodies,
# element-wise heads and tails), misaligned inputs beside aligned outputs, and no rows at all
# (dbias and d_bias written as zeros).
CASES = [((37,), ()), ((3, 5, 7), ()), ((2, 13), ()), ((300, 1), ()), ((65, 8), ()), ((7, 1000), ()),
         ((1000, 24), ()), ((17, 1027), ()), ((5, 264), ("x",)), ((9, 520), ("dy", "g")),
         ((6, 1027), ("x", "dy", "g")), ((4, 256), ("bias", "g_bias")), ((0, 8), ())]


def on_gpu(t, misaligned):
    """t on the GPU; if misaligned, one element past a 16-byte boundary."""
    if not misaligned:
        return t.cuda()
    flat = torch.empty(t.numel() + 1, dtype=t.dtype, device="cuda")
    view = flat[1:].view(t.shape)
    view.copy_(t)
    return view


def run_ops(x, bias, dy, g, g_bias, act):
    """(name, result, rows summed into it) of the forward, backward and double backward."""
    y = torch.ops.twinop.bias_act(x, bias, act)
    dx, dbias = torch.ops.twinop.bias_act_backward(dy, x, bias, act)
    d_dy, d_x, d_bias = torch.ops.twinop.bias_act_double_backward(g, g_bias, dy, x, bias, act)
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    return [("y", y, 1), ("dx", dx, 1), ("dbias", dbias, rows), ("d_dy", d_dy, 1), ("d_x", d_x, 1),
            ("d_bias", d_bias, rows)]


def mismatches(dtype_name, act, shape, misaligned):
    dtype = DTYPES[dtype_name]
    cpu = {"x": (torch.randn(shape) * 2).to(dtype), "bias": torch.randn(shape[-1]).to(dtype),
           "dy": torch.randn(shape).to(dtype), "g": torch.randn(shape).to(dtype),
           "g_bias": torch.randn(shape[-1]).to(dtype)}
    gpu = {name: on_gpu(t, name in misaligned) for name, t in cpu.items()}
    found = []
    for (name, want, summed), (_, got, _) in zip(run_ops(**cpu, act=act), run_ops(**gpu, act=act)):
        rtol, atol = tolerance(dtype_name, max(summed, 1))
        if not torch.allclose(got.cpu().double(), want.double(), rtol=rtol, atol=atol, equal_nan=True):
            found.append(f"{dtype_name} {act} {shape} misaligned {misaligned}: {name} differs from the CPU kernel")
    return found


# RMSNorm (cuda/rms_norm_plan.cuh): rows many to a block (sub-warp and warp-wide), whole vectors and
# element by element (odd widths, misaligned inputs), one block a row, a cluster of slices a row
# (70,000 columns), more slices than a cluster takes (600,000: the second passes; half types only,
# as the CPU kernels' float32 sums of so many columns leave the float32 tolerance), no rows, no
# columns.
RMS_NORM_DTYPES = [("float32", "float32"), ("float64", "float64"), ("float16", "float16"), ("float16", "float32"),
                   ("bfloat16", "bfloat16"), ("bfloat16", "float32")]
RMS_NORM_CASES = [((37,), ()), ((3, 5, 7), ()), ((300, 8), ()), ((65, 64), ()), ((7, 1000), ()), ((17, 1027), ()),
                  ((64, 4096), ()), ((5, 264), ("x",)), ((9, 520), ("dy", "residual")), ((6, 1024), ("weight",)),
                  ((3, 70000), ()), ((3, 70000), ("x", "ds")), ((0, 8), ()), ((4, 0), ())]
RMS_NORM_WIDE = ((2, 600000), ())


def run_rms_norm_ops(x, weight, dy, residual, ds):
    """(name, result, rows summed into it) of RMSNorm's forward and backward, plain and with the
    residual add."""
    y, rstd = torch.ops.twinop.rms_norm(x, weight, 1e-6, 0.5)
    dx, dweight = torch.ops.twinop.rms_norm_backward(dy, x, rstd, weight, 0.5)
    y_add, s, rstd_add = torch.ops.twinop.add_rms_norm(x, residual, weight, 1e-6, 0.5)
    dx_add, dweight_add = torch.ops.twinop.add_rms_norm_backward(dy, ds, s, rstd_add, weight, 0.5)
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    return [("y", y, 1), ("rstd", rstd, 1), ("dx", dx, 1), ("dweight", dweight, rows), ("add y", y_add, 1),
            ("add s", s, 1), ("add rstd", rstd_add, 1), ("add dx", dx_add, 1), ("add dweight", dweight_add, rows)]


def rms_norm_mismatches(dtypes, shape, misaligned):
    dtype, weight_dtype = (DTYPES[name] for name in dtypes)
    cpu = {"x": torch.randn(shape).to(dtype), "weight": torch.randn(shape[-1]).to(weight_dtype),
           **{name: torch.randn(shape).to(dtype) for name in ("dy", "residual", "ds")}}
    gpu = {name: on_gpu(t, name in misaligned) for name, t in cpu.items()}
    found = []
    for (name, want, summed), (_, got, _) in zip(run_rms_norm_ops(**cpu), run_rms_norm_ops(**gpu)):
        compute = "float64" if dtypes[0] == "float64" else "float32"
        bound = dtypes[1] if "dweight" in name else (compute if "rstd" in name else dtypes[0])
        rtol, atol = tolerance(bound, max(summed, 1))
        if not torch.allclose(got.cpu().double(), want.double(), rtol=rtol, atol=atol, equal_nan=True):
            found.append(f"rms_norm {dtypes} {shape} misaligned {misaligned}: {name} differs from the CPU kernel")
    return found


def main():
    torch.manual_seed(0)
    found = []
    for dtype_name in DTYPES:
        for act in ACTIVATIONS:
            for shape, misaligned in CASES:
                found += mismatches(dtype_name, act, shape, misaligned)
    rms_norm_cases = [(dtypes, case) for dtypes in RMS_NORM_DTYPES for case in RMS_NORM_CASES]
    rms_norm_cases += [(dtypes, RMS_NORM_WIDE) for dtypes in RMS_NORM_DTYPES
                       if dtypes[0] in ("float16", "bfloat16")]
    for dtypes, (shape, misaligned) in rms_norm_cases:
        found += rms_norm_mismatches(dtypes, shape, misaligned)
    torch.cuda.synchronize()
    print("\n".join(found) or f"sanitize_gpu: {len(DTYPES) * len(ACTIVATIONS) * len(CASES)} cases of 3 ops and "
                               f"{len(rms_norm_cases)} cases of RMSNorm's 4 ops match the CPU kernels")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
