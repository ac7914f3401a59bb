"""bias_act: the differentiable entry point, through the autograd.Function or the op itself."""
import torch

from ._autocast import autocast_inputs
from ._checks import check_bias_act_args
from ._function import BiasAct


def _autocast_inputs(x, bias):
    """x and bias cast as the op's autocast kernel casts them (_autocast.py). Done before the
    Function, so the tensors it saves have the dtype it computed in, and the cast's own backward
    brings the gradient back to an fp32 bias; and before the checks, which then see what the op
    will see."""
    device = x.device.type
    if not (torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)):
        return x, bias
    return autocast_inputs(device, x, bias)


def bias_act(x: torch.Tensor, bias: torch.Tensor, act: str = "gelu") -> torch.Tensor:
    """y = act(x + bias), bias of shape (x.shape[-1],); differentiable in x and bias to second
    order, in reverse and forward mode, under torch.func transforms and vmap."""
    x, bias = _autocast_inputs(x, bias)
    check_bias_act_args(x, bias, act)
    if torch.compiler.is_compiling():  # Dynamo refuses the Function's custom jvp; the op has autograd
        return torch.ops.twinop.bias_act(x, bias, act)
    return BiasAct.apply(x, bias, act)
