"""BiasAct: the nn.Module form of bias_act, holding its bias. (RMSNorm's is in _rms_norm.py.)"""
import torch
from torch import nn

from .. import ACTIVATIONS
from ._bias_act import bias_act


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

