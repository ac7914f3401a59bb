"""BiasAct and RMSNorm: the nn.Module forms of bias_act and rms_norm, holding their parameter."""
import torch
from torch import nn

from .. import ACTIVATIONS
from ._bias_act import bias_act
from ._rms_norm import rms_norm


class BiasAct(nn.Module):
    """y = act(x + bias), with a learnable bias of shape (features,) applied on the last axis:
    the bias and activation that follow an nn.Linear(in_features, features, bias=False), fused
    in one kernel.

    The bias starts at zeros (as Keras' Dense and twinop.tf.BiasAct do): this module does not
    know the fan-in that nn.Linear's bias init depends on. To reproduce nn.Linear's init, call
    ``nn.init.uniform_(m.bias, -fan_in ** -0.5, fan_in ** -0.5)``.
    """

    def __init__(self, features: int, act: str = "gelu", device=None, dtype=None):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}; got {act!r}")
        self.features = features
        self.act = act
        self.bias = nn.Parameter(torch.empty(features, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_act(x, self.bias, self.act)

    def extra_repr(self) -> str:
        return f"features={self.features}, act={self.act!r}"


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2 over the last axis) + eps) * (weight + offset), with a learnable weight
    of shape (normalized_shape,): torch.nn.RMSNorm over the last axis, fused in one kernel. Its
    state_dict is nn.RMSNorm's ({"weight": ...}), so either loads the other's.

    The weight starts at ones, as nn.RMSNorm's; with offset=1.0 (Gemma's convention, y scaled by
    1 + weight) start it at zeros: ``nn.init.zeros_(m.weight)``. Under CUDA autocast the module
    computes in float32, as nn.RMSNorm does; on the CPU a float32 weight with bfloat16 or float16
    input runs mixed, in one kernel.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-6, *, offset: float = 0.0, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if len(shape) != 1:
            raise ValueError(f"twinop.torch.RMSNorm normalizes the last axis: normalized_shape must be an int or "
                             f"have one element; got {normalized_shape!r}")
        self.normalized_shape = shape
        self.eps = eps
        self.offset = offset
        self.weight = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps, offset=self.offset)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, offset={self.offset}"
