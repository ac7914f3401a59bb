"""twinop's PyTorch binding: the ops torch.ops.twinop.bias_act / bias_act_backward, their
fake kernels (for torch.compile and export), autograd and autocast, the differentiable
bias_act and the BiasAct module."""
import torch

from . import _library  # noqa: F401  (registers the ops; must come first)
from . import _autograd, _fake  # noqa: F401  (register on import)
from .module import BiasAct

__all__ = ["BiasAct", "bias_act"]


def bias_act(x: torch.Tensor, bias: torch.Tensor, act: str = "gelu") -> torch.Tensor:
    """y = act(x + bias), bias of shape (x.shape[-1],); differentiable in x and bias."""
    return torch.ops.twinop.bias_act(x, bias, act)
