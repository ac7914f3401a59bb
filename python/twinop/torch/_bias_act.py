"""bias_act: the differentiable entry point, through the autograd.Function or the op itself."""
import torch

from ._function import BiasAct


def _autocast_inputs(x, bias):
    """x and bias cast as the op's autocast kernel (bias_act_autocast.cpp) casts them, nn.Linear's
    policy: floating inputs other than float64 to the autocast dtype of x's device. Done before
    the Function, so the tensors it saves have the dtype it computed in, and the cast's own
    backward brings the gradient back to an fp32 bias."""
    device = x.device.type
    if not (torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)):
        return x, bias
    dtype = torch.get_autocast_dtype(device)
    return tuple(t.to(dtype) if t.is_floating_point() and t.dtype != torch.float64 else t for t in (x, bias))


def bias_act(x: torch.Tensor, bias: torch.Tensor, act: str = "gelu") -> torch.Tensor:
    """y = act(x + bias), bias of shape (x.shape[-1],); differentiable in x and bias to second
    order, in reverse and forward mode, under torch.func transforms and vmap."""
    if torch.compiler.is_compiling():  # Dynamo refuses the Function's custom jvp; the op has autograd
        return torch.ops.twinop.bias_act(x, bias, act)
    return BiasAct.apply(*_autocast_inputs(x, bias), act)
