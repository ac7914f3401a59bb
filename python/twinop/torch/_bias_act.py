"""bias_act: the differentiable entry point, through the autograd.Function or the op itself."""
import torch

from ._autocast import KEYS as AUTOCAST_DEVICE_TYPES, autocast_inputs
from ._bias_act_function import BiasAct
from ._checks import check_bias_act_args, check_out_arg
from ._dual_check import in_dual_level


# twinop-feature: mixed-precision
def _autocast_inputs(x, bias):
    """x and bias cast as the op's autocast kernel casts them (_autocast.py). Done before the
    Function, so the tensors it saves have the dtype it computed in, and the cast's own backward
    brings the gradient back to an fp32 bias; and before the checks, which then see what the op
    will see."""
    device = x.device.type
    # The devices twinop has kernels for, rather than torch.amp.is_autocast_available(device),
    # which torch.compile cannot trace before torch 2.13 (a graph break, an error with fullgraph).
    if not (device in AUTOCAST_DEVICE_TYPES and torch.is_autocast_enabled(device)):
        return x, bias
    return autocast_inputs(device, x, bias)


# twinop-feature: end
def _differentiated(x, bias):
    """Whether this call needs the Function: a gradient may be asked for, or a forward-mode level
    (torch.autograd.forward_ad, torch.func.jvp and jacfwd) is open. Otherwise the op alone gives the
    same result and skips Function.apply's ~13 us."""
    return (torch.is_grad_enabled() and (x.requires_grad or bias.requires_grad)) or in_dual_level()


def _op_below_autograd(x, bias, act):
    """The op past its Autograd key: what its autograd kernel (torch.library.register_autograd's,
    in Python) does itself when nothing needs a gradient, without that kernel's ~6 us a call."""
    with torch._C._AutoDispatchBelowAutograd():
        return torch.ops.twinop.bias_act(x, bias, act)


def bias_act(x: torch.Tensor, bias: torch.Tensor, act: str = "gelu", *, out: torch.Tensor | None = None) -> torch.Tensor:
    """y = act(x + bias), bias of shape (x.shape[-1],); differentiable in x and bias to second
    order, in reverse and forward mode, under torch.func transforms and vmap.

    out: a contiguous tensor shaped and typed like x to write y into (it may be x itself on the
    CPU); as PyTorch's own out= functions, this form is not differentiable and not autocast.
    Eager only: PyTorch cannot functionalize a custom op that returns its out argument, and a
    compiler plans the output's memory itself."""
    # twinop-feature: out
    if out is not None:
        if torch.compiler.is_compiling():
            raise NotImplementedError("twinop.bias_act: out= is not supported under torch.compile or torch.export; "
                                      "call bias_act(x, bias, act) there")
        check_bias_act_args(x, bias, act)
        check_out_arg(out, "out", x, "x")
        return torch.ops.twinop.bias_act.out(x, bias, act, out=out)
    # twinop-feature: end
    x, bias = _autocast_inputs(x, bias)
    check_bias_act_args(x, bias, act)
    # twinop-feature: compiled
    if torch.compiler.is_compiling():  # Dynamo refuses the Function's custom jvp; the op has autograd
        return torch.ops.twinop.bias_act(x, bias, act)
    # twinop-feature: end
    if not _differentiated(x, bias):
        return _op_below_autograd(x, bias, act)
    return BiasAct.apply(x, bias, act)
