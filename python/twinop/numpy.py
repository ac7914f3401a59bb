"""twinop's numpy binding: float32, float64, float16 and (with ml_dtypes) bfloat16 arrays.

bias_act(x, bias, act="gelu") -> y
bias_act_backward(dy, x, bias, act="gelu") -> (dx, dbias)
"""
from ._twinop_numpy import ACTIVATIONS, bias_act, bias_act_backward

__all__ = ["ACTIVATIONS", "bias_act", "bias_act_backward"]
