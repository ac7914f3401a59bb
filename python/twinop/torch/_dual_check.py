"""The raw ops' refusal of forward-mode dual tensors, for the stable-ABI library. The ops' autograd
(torch.library.register_autograd) has no forward-mode derivative, so a dual tensor that reaches
the kernels would come out without its tangent: a silent zero. The classic library's kernels
refuse one (check_not_dual, csrc/torch/binding.h); the stable ABI cannot see tangents (and asking
the dispatcher for aten::_unpack_dual from a kernel fails under a TorchDispatchMode), so for it
the check runs here, as a Python kernel on ADInplaceOrView, the key after autograd that every call
of the ops passes. The entry points (twinop.torch.bias_act, rms_norm, add_rms_norm) never pass a
dual tensor down: they have their own jvp."""
import torch
from torch.autograd import forward_ad

from . import _library

# twinop-feature: forward-mode (torch-stable)
# The raw ops of each function, which the classic library's messages name (twinop.<function>) and
# point to (twinop.torch.<function>); every overload of each, the out= forms too, is checked.
FUNCTIONS = {"bias_act": ("bias_act", "bias_act_backward", "bias_act_double_backward"),
             "rms_norm": ("rms_norm", "add_rms_norm", "rms_norm_backward", "add_rms_norm_backward")}
BELOW = torch._C._after_ADInplaceOrView_keyset


# twinop-feature: end
def in_dual_level():
    """Whether a forward-mode level is open (tangents live only inside one). A private global of
    torch's forward_ad (PyTorch has no public test); where a torch lacks it, the answer is yes."""
    return getattr(forward_ad, "_current_level", 0) >= 0


# twinop-feature: forward-mode (torch-stable)
def _kernel(op, function):
    names = [argument.name for argument in op._schema.arguments]

    def refuse_dual(keyset, *args, **outs):
        if in_dual_level():
            for name, arg in (*zip(names, args), *outs.items()):
                if isinstance(arg, torch.Tensor) and forward_ad.unpack_dual(arg, level=0).tangent is not None:
                    raise RuntimeError(f"twinop.{function}: {name} carries a forward-mode tangent, which the raw ops "
                                       f"torch.ops.twinop.* drop; call twinop.torch.{function} for forward-mode AD")
        return op.redispatch(keyset & BELOW, *args, **outs)

    return refuse_dual


def _register():
    library = torch.library.Library("twinop", "IMPL")
    for function, names in FUNCTIONS.items():
        for name in names:
            packet = getattr(torch.ops.twinop, name)
            for overload in packet.overloads():
                library.impl(name if overload == "default" else f"{name}.{overload}",
                             _kernel(getattr(packet, overload), function), "ADInplaceOrView", with_keyset=True)
    return library


_STABLE_LIBRARY_DUAL_CHECK = _register() if _library.ABI == "stable" else None  # kept alive: it holds the kernels
