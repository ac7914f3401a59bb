"""Float64 reference of y = act(x + bias) and its backward, written from the textbook
formulas with Python's math module, independently of the kernels and of any framework.
Used by the tests, `twinop info` and the report to check every binding."""
import math

import numpy as np

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

_erf = np.frompyfunc(math.erf, 1, 1)


def _phi(v):
    """Standard normal density."""
    return np.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi)


def _sigmoid(v):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


def _gelu(v):
    return 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)).astype(np.float64))


def _gelu_grad(v):
    return 0.5 * (1.0 + _erf(v / math.sqrt(2.0)).astype(np.float64)) + v * _phi(v)


def _gelu_tanh(v):
    return 0.5 * v * (1.0 + np.tanh(_SQRT_2_OVER_PI * (v + 0.044715 * v**3)))


def _gelu_tanh_grad(v):
    t = np.tanh(_SQRT_2_OVER_PI * (v + 0.044715 * v**3))
    return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * v * v)


def _silu(v):
    return v * _sigmoid(v)


def _silu_grad(v):
    s = _sigmoid(v)
    return s + v * s * (1.0 - s)


def _relu(v):
    return np.where(v < 0, 0.0, v)  # NaN passes through, as torch.relu


def _relu_grad(v):
    return np.where(v <= 0, 0.0, 1.0)  # 0 at v == 0 and 1 at NaN, as PyTorch


FORWARD = {"gelu": _gelu, "gelu_tanh": _gelu_tanh, "silu": _silu, "relu": _relu}
DERIVATIVE = {"gelu": _gelu_grad, "gelu_tanh": _gelu_tanh_grad, "silu": _silu_grad, "relu": _relu_grad}


def bias_act(x, bias, act):
    """y = act(x + bias) in float64, from array-likes of any float dtype."""
    with np.errstate(invalid="ignore", over="ignore"):
        v = np.asarray(x, np.float64) + np.asarray(bias, np.float64)
        return FORWARD[act](v)


def bias_act_backward(dy, x, bias, act):
    """(dx, dbias) in float64: dx = dy * act'(x + bias), dbias = dx summed over all but the last axis."""
    with np.errstate(invalid="ignore", over="ignore"):
        v = np.asarray(x, np.float64) + np.asarray(bias, np.float64)
        dx = np.asarray(dy, np.float64) * DERIVATIVE[act](v)
        dbias = dx.reshape(-1, dx.shape[-1]).sum(axis=0)
        return dx, dbias
