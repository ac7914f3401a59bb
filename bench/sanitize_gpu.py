"""A small forward+backward of every dtype x activation through torch.ops.twinop on the GPU,
on shapes that reach every code path of the kernels, for compute-sanitizer:

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
# (shape, misaligned): the scalar path (odd or narrow rows, a misaligned pointer), the vector
# path with a partly idle last column block, one column group per row (a 256-row block
# reduction), several row blocks, and no rows at all (dbias written as zeros).
CASES = [((37,), False), ((3, 5, 7), False), ((2, 13), False), ((300, 1), False),
         ((65, 8), False), ((7, 1000), False), ((1000, 24), False), ((5, 264), True), ((0, 8), False)]


def on_gpu(t, misaligned):
    """t on the GPU; if misaligned, one element past a 16-byte boundary (the scalar path)."""
    if not misaligned:
        return t.cuda()
    flat = torch.empty(t.numel() + 1, dtype=t.dtype, device="cuda")
    view = flat[1:].view(t.shape)
    view.copy_(t)
    return view


def mismatches(dtype_name, act, shape, misaligned):
    dtype = DTYPES[dtype_name]
    x = (torch.randn(shape) * 2).to(dtype)
    bias = torch.randn(shape[-1]).to(dtype)
    dy = torch.randn(shape).to(dtype)
    cpu = [torch.ops.twinop.bias_act(x, bias, act), *torch.ops.twinop.bias_act_backward(dy, x, bias, act)]
    gx, gbias, gdy = (on_gpu(t, misaligned) for t in (x, bias, dy))
    gpu = [torch.ops.twinop.bias_act(gx, gbias, act), *torch.ops.twinop.bias_act_backward(gdy, gx, gbias, act)]
    rows = x.numel() // shape[-1] if shape[-1] else 0
    found = []
    for name, want, got, summed in zip(("y", "dx", "dbias"), cpu, gpu, (1, 1, rows)):
        rtol, atol = tolerance(dtype_name, max(summed, 1))
        if not torch.allclose(got.cpu().double(), want.double(), rtol=rtol, atol=atol, equal_nan=True):
            found.append(f"{dtype_name} {act} {shape} misaligned={misaligned}: {name} differs from the CPU kernel")
    return found


def main():
    torch.manual_seed(0)
    found = []
    for dtype_name in DTYPES:
        for act in ACTIVATIONS:
            for shape, misaligned in CASES:
                found += mismatches(dtype_name, act, shape, misaligned)
    torch.cuda.synchronize()
    print("\n".join(found) or f"sanitize_gpu: {len(DTYPES) * len(ACTIVATIONS) * len(CASES)} cases match the CPU kernels")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
