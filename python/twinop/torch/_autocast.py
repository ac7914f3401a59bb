"""Autocast, for the stable-ABI library: the classic library's C++ kernels' policies, per op.

- bias_act: nn.Linear's ("lower_precision_fp", csrc/torch/bias_act_autocast.cpp) on the CPU and
  CUDA: floating inputs on the autocast device, float64 left alone, cast to the dtype the user
  chose for that device;
- rms_norm, add_rms_norm: F.rms_norm's ("fp32", csrc/torch/rms_norm.cpp) on CUDA alone: the same
  inputs cast to float32; on the CPU autocast leaves them alone, as it leaves F.rms_norm.

The stable ABI has no autocast API (no dispatch-key guard, no autocast dtype, no cached_cast), so
for the stable-ABI library the policies are registered here, as Python kernels on AutocastCPU and
AutocastCUDA. One difference: cached_cast casts an fp32 parameter once per autocast region, these
kernels at every call (same results, one more cast of the parameter)."""
import torch

from . import _library

KEYS = {"cpu": "AutocastCPU", "cuda": "AutocastCUDA"}
LOWER_PRECISION_FP, FP32 = "lower_precision_fp", "fp32"
# op: (policy, the device types it applies on).
POLICIES = {"bias_act": (LOWER_PRECISION_FP, ("cpu", "cuda")),
            "rms_norm": (FP32, ("cuda",)),
            "add_rms_norm": (FP32, ("cuda",))}


def autocast_inputs(device_type, *args, policy=LOWER_PRECISION_FP):
    """args as autocast casts them for an op of `policy` on device_type (see the module docstring);
    other than tensors, left as they are."""
    dtype = torch.get_autocast_dtype(device_type) if policy == LOWER_PRECISION_FP else torch.float32
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.device.type == device_type
                 and a.is_floating_point() and a.dtype != torch.float64 else a for a in args)


# twinop-feature: mixed-precision (torch-stable)
def _kernel(op, policy, device_type):
    below_autocast = torch._C.DispatchKeySet(getattr(torch._C.DispatchKey, KEYS[device_type]))

    def autocast(keyset, *args):
        with torch._C._ExcludeDispatchKeyGuard(below_autocast):
            return op(*autocast_inputs(device_type, *args, policy=policy))

    return autocast


def _register():
    library = torch.library.Library("twinop", "IMPL")
    for name, (policy, device_types) in POLICIES.items():
        for device_type in device_types:
            library.impl(name, _kernel(getattr(torch.ops.twinop, name).default, policy, device_type),
                         KEYS[device_type], with_keyset=True)
    return library


_STABLE_LIBRARY_AUTOCAST = _register() if _library.ABI == "stable" else None  # kept alive: it holds the kernels
