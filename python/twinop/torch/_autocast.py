"""Autocast, nn.Linear's policy ("lower_precision_fp"): floating inputs on the autocast device,
float64 left alone, cast to the dtype the user chose for that device.

The classic library has it as a C++ kernel (csrc/torch/bias_act_autocast.cpp). The stable ABI has
no autocast API (no dispatch-key guard, no autocast dtype, no cached_cast), so for the stable-ABI
library the same policy is registered here, as a Python kernel on AutocastCPU and AutocastCUDA.
One difference: cached_cast casts an fp32 parameter once per autocast region, this kernel at
every call (same results, one more cast of the bias)."""
import torch

from . import _library

KEYS = {"cpu": "AutocastCPU", "cuda": "AutocastCUDA"}


def autocast_inputs(device_type, *tensors):
    """tensors as autocast casts them for an op on device_type: see the module docstring."""
    dtype = torch.get_autocast_dtype(device_type)
    return tuple(t.to(dtype) if t.device.type == device_type and t.is_floating_point() and t.dtype != torch.float64
                 else t for t in tensors)


# twinop-feature: mixed-precision (torch-stable)
def _kernel(device_type):
    below_autocast = torch._C.DispatchKeySet(getattr(torch._C.DispatchKey, KEYS[device_type]))

    def bias_act_autocast(keyset, x, bias, act):
        with torch._C._ExcludeDispatchKeyGuard(below_autocast):
            return torch.ops.twinop.bias_act.default(*autocast_inputs(device_type, x, bias), act)

    return bias_act_autocast


def _register():
    library = torch.library.Library("twinop", "IMPL")
    for device_type, key in KEYS.items():
        library.impl("bias_act", _kernel(device_type), key, with_keyset=True)
    return library


_STABLE_LIBRARY_AUTOCAST = _register() if _library.ABI == "stable" else None  # kept alive: it holds the kernels
