"""The kernels behind the GPU targets, each launched once at the headline shape, for Nsight
Compute to profile (bench/device_run.sh's opt-in `profile` step runs this under ncu):
twinop's forward, backward and column-sum kernels and torch.compile's fusion of gelu(x + b),
forward, in bfloat16 and float32. ncu replays each launch for its metrics, so one is enough.

    ncu --kernel-name regex:'bias_act|sum_partial|triton' python bench/profile_gpu.py
"""
import sys

import torch
import torch.nn.functional as F

import twinop.torch  # noqa: F401  (registers torch.ops.twinop)

HEADLINE = (16384, 8192)  # as bench/bench_gpu.py


def gelu_bias(x, b):
    return F.gelu(x + b)


def main():
    if not torch.cuda.is_available():
        sys.exit("profile_gpu: no CUDA device")
    compiled = torch.compile(gelu_bias, dynamic=False)
    for dtype in (torch.bfloat16, torch.float32):
        x = torch.randn(HEADLINE, device="cuda", dtype=dtype)
        b = torch.randn(HEADLINE[-1], device="cuda", dtype=dtype)
        dy = torch.randn(HEADLINE, device="cuda", dtype=dtype)
        torch.ops.twinop.bias_act(x, b, "gelu")
        torch.ops.twinop.bias_act_backward(dy, x, b, "gelu")
        compiled(x, b)
        torch.cuda.synchronize()
        print(f"profile_gpu: {dtype} at {HEADLINE[0]}x{HEADLINE[1]} launched", flush=True)


if __name__ == "__main__":
    main()
