"""Float64 reference of y = act(x + bias), its backward and double backward, and of RMSNorm and its
backward, written from the textbook formulas with Python's math module and numpy, independently of
the kernels and of any framework. Used by the tests, `twinop info` and the report to check every
binding."""
import math

import numpy as np

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

# Where a derivative is tiny but not zero (the tails), it must stay so: an infinite gradient times
# it is Inf, not NaN. So the complements that would cancel to 0 in float64 (1 + erf, 1 +- tanh,
# 1 - sigmoid) are computed as the equal functions that do not (erfc, sigmoids).
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _phi(v):
    """Standard normal density."""
    return np.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi)


def _cdf(v):
    """Standard normal distribution function, 0.5 (1 + erf(v / sqrt 2)) = 0.5 erfc(-v / sqrt 2)."""
    return 0.5 * _erfc(-v / math.sqrt(2.0)).astype(np.float64)


def _sigmoid(v):
    """1 / (1 + e^-v), as e^v / (1 + e^v) for v < 0: e^-v would overflow there before the
    result leaves float64's range (at v = -745)."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(v))
        return np.where(v < 0, e / (1.0 + e), 1.0 / (1.0 + e))


def _gelu(v):
    return v * _cdf(v)


def _gelu_grad(v):
    return _cdf(v) + v * _phi(v)


def _gelu_second(v):
    return _phi(v) * (2.0 - v * v)  # d/dv (cdf + v pdf) = 2 pdf + v pdf', pdf' = -v pdf


def _tanh_halves(v):
    """(1 + tanh u) / 2 and (1 - tanh u) / 2 for gelu_tanh's u = sqrt(2/pi) (v + 0.044715 v^3),
    as sigmoid(2u) and sigmoid(-2u)."""
    u = _SQRT_2_OVER_PI * (v + 0.044715 * v**3)
    return _sigmoid(2.0 * u), _sigmoid(-2.0 * u)


def _gelu_tanh(v):
    plus, _ = _tanh_halves(v)
    return v * plus  # 0.5 v (1 + tanh u)


def _gelu_tanh_grad(v):
    # f' = 0.5 (1 + t) + 0.5 v (1 - t^2) u', t = tanh(u)
    plus, minus = _tanh_halves(v)
    sech2 = 4.0 * plus * minus  # 1 - t^2
    return plus + 0.5 * v * sech2 * _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * v * v)


def _gelu_tanh_second(v):
    # f'' = (1 - t^2) u' + 0.5 v ((1 - t^2) u'' - 2 t (1 - t^2) u'^2), as dt/dv = (1 - t^2) u'
    u_1 = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * v * v)
    u_2 = _SQRT_2_OVER_PI * 6 * 0.044715 * v
    plus, minus = _tanh_halves(v)
    t, sech2 = plus - minus, 4.0 * plus * minus
    return sech2 * u_1 + 0.5 * v * (sech2 * u_2 - 2.0 * t * sech2 * u_1 * u_1)


def _silu(v):
    return v * _sigmoid(v)


def _silu_grad(v):
    s, one_minus_s = _sigmoid(v), _sigmoid(-v)
    return s + v * s * one_minus_s


def _silu_second(v):
    s, one_minus_s = _sigmoid(v), _sigmoid(-v)
    ds = s * one_minus_s  # sigmoid', and sigmoid'' = ds (1 - 2 s)
    return 2.0 * ds + v * ds * (one_minus_s - s)


def _relu(v):
    return np.where(v < 0, 0.0, v)  # NaN passes through, as torch.relu


def _relu_grad(v):
    return np.where(v <= 0, 0.0, 1.0)  # 0 at v == 0 and 1 at NaN, as PyTorch


def _relu_second(v):
    return np.zeros_like(v)


FORWARD = {"gelu": _gelu, "gelu_tanh": _gelu_tanh, "silu": _silu, "relu": _relu}
DERIVATIVE = {"gelu": _gelu_grad, "gelu_tanh": _gelu_tanh_grad, "silu": _silu_grad, "relu": _relu_grad}
SECOND_DERIVATIVE = {"gelu": _gelu_second, "gelu_tanh": _gelu_tanh_second, "silu": _silu_second,
                     "relu": _relu_second}


def _sum_rows(t):
    """t summed over every axis but the last (reshape(-1, 0) would be ambiguous for 0 columns)."""
    return t.sum(axis=tuple(range(t.ndim - 1)))


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
        return dx, _sum_rows(dx)


def bias_act_double_backward(g, dy, x, bias, act, g_bias=None):
    """(d_dy, d_x, d_bias) in float64: the gradients of bias_act_backward's inputs given g at dx
    (and g_bias at dbias): with v = x + bias and G = g + g_bias, d_dy = G act'(v),
    d_x = G dy act''(v), d_bias = d_x summed over all but the last axis."""
    with np.errstate(invalid="ignore", over="ignore"):
        v = np.asarray(x, np.float64) + np.asarray(bias, np.float64)
        grad = np.asarray(g, np.float64) + (0.0 if g_bias is None else np.asarray(g_bias, np.float64))
        d_dy = grad * DERIVATIVE[act](v)
        d_x = grad * np.asarray(dy, np.float64) * SECOND_DERIVATIVE[act](v)
        return d_dy, d_x, _sum_rows(d_x)


def rms_norm_rstd(x, eps):
    """1 / sqrt(mean(x^2 over the last axis) + eps), shaped x.shape[:-1]."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return 1.0 / np.sqrt(np.sum(np.square(x), axis=-1) / x.shape[-1] + eps)


def rms_norm(x, weight, eps, offset=0.0):
    """(y, rstd): y = x * rstd * (weight + offset)."""
    rstd = rms_norm_rstd(x, eps)
    with np.errstate(over="ignore", invalid="ignore"):
        return x * rstd[..., None] * (weight + offset), rstd


def rms_norm_backward(dy, x, weight, eps, offset=0.0):
    """(dx, dweight): dx = rstd (g - x_hat mean(g x_hat)), g = dy (weight + offset), x_hat = x rstd;
    dweight = dy x_hat summed over every axis but the last."""
    rstd = rms_norm_rstd(x, eps)[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        x_hat = x * rstd
        g = dy * (weight + offset)
        dx = rstd * (g - x_hat * (np.sum(g * x_hat, axis=-1, keepdims=True) / x.shape[-1]))
        return dx, np.sum(dy * x_hat, axis=tuple(range(x.ndim - 1)))
