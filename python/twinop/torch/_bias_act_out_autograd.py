"""Autograd for the out= overloads on the stable-ABI library, as the classic library's C++ kernel
(csrc/torch/bias_act_out_autograd.cpp) does it, which the stable API cannot (no GradMode, no
version counter): not differentiable, as PyTorch's own out= functions (asked for a gradient, they
say so instead of dropping it), and writing into the outputs bumps their version counters, so a
backward that saved them before they were overwritten fails loudly."""
import torch

from . import _library

BELOW_AUTOGRAD = torch._C._after_autograd_keyset
OUTS = {"bias_act": ("out",), "bias_act_backward": ("dx", "dbias")}


def _kernel(name, op):
    def out_autograd(keyset, *args, **outs):
        if torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad
                                           for t in (*args, *outs.values())):
            raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                               "differentiation, but one of the arguments requires grad.")
        with torch._C._AutoDispatchBelowAutograd():
            result = op.redispatch(keyset & BELOW_AUTOGRAD, *args, **outs)
        for out in OUTS[name]:
            torch.autograd.graph.increment_version(outs[out])
        return result

    return out_autograd


def _register():
    library = torch.library.Library("twinop", "IMPL")
    for name in OUTS:
        library.impl(f"{name}.out", _kernel(name, getattr(torch.ops.twinop, name).out), "Autograd", with_keyset=True)
    return library


_STABLE_LIBRARY_OUT_AUTOGRAD = _register() if _library.ABI == "stable" else None  # kept alive: it holds the kernels
