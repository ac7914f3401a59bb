"""How accurate float16 and bfloat16 results are after their rounding: every finite value of the
dtype as x, beside a few biases, each result against the float64 reference (of x + bias summed
exactly) rounded correctly to the dtype. Used by tests/test_half_math.py, tests/test_gpu_math.py
and bench/half_math_error.py.

Per (activation, result, bias) it gives the fraction of results that are the correctly rounded
value and the largest error in units in the last place of the dtype at the exact value."""
import functools

import numpy as np

from tolerances import TOLERANCE
from twinop import reference

# Significant bits (the leading one included), and the exponents of the smallest normal binade and
# of the largest.
FORMATS = {"float16": (11, -14, 15), "bfloat16": (8, -126, 127)}
# 0, where every x is its own input; and two biases whose activations and derivatives are at least
# 0.09 ulp from a tie in both dtypes: for the half of all x that are below half an ulp of the
# bias, x + b is b in float, so one result at b weighs on a bias's whole figure, and a near tie
# there would decide it by luck.
BIASES = (0.0, 0.25, -1.9375)
# The results the kernels give, each an order of derivative: the forward's y, the backward's dx
# with dy = 1, the double backward's d_dy and d_x with g = dy = 1.
RESULTS = {"forward y": 0, "backward dx": 1, "double backward d_dy": 1, "double backward d_x": 2}
ORDERS = {0: reference.FORWARD, 1: reference.DERIVATIVE, 2: reference.SECOND_DERIVATIVE}


def numpy_dtype(dtype_name):
    if dtype_name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype_name)


def finite_values(dtype_name):
    """Every finite value of the dtype (both zeros), as float64."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    with np.errstate(invalid="ignore"):  # the NaNs, dropped below
        values = bits.view(numpy_dtype(dtype_name)).astype(np.float64)
    return values[np.isfinite(values)]


def ulp(exact, dtype_name):
    """The dtype's unit in the last place at each exact value (its subnormals' spacing below)."""
    bits, smallest, _ = FORMATS[dtype_name]
    with np.errstate(divide="ignore"):
        _, e = np.frexp(exact)  # 2^(e-1) <= |exact| < 2^e
    return np.ldexp(1.0, np.maximum(e - 1, smallest) - (bits - 1))


def round_correctly(exact, dtype_name):
    """float64 values rounded to nearest even in the dtype, in one rounding (a cast through float32
    would round twice), returned as float64; past the largest finite value, +-Inf."""
    bits, _, largest_exponent = FORMATS[dtype_name]
    step = ulp(exact, dtype_name)
    with np.errstate(invalid="ignore"):
        rounded = np.where(np.isfinite(exact), np.rint(exact / step) * step, exact)  # exact scalings
    largest = np.ldexp(2.0 - 2.0 ** (1 - bits), largest_exponent)
    return np.where(np.abs(rounded) > largest, np.copysign(np.inf, exact), rounded)


@functools.lru_cache(maxsize=None)
def inputs(dtype_name):
    """(x, bias) for one call over everything: x is (n, len(BIASES)), each column every finite
    value, beside bias = BIASES, both in the dtype."""
    dtype = numpy_dtype(dtype_name)
    x = np.repeat(finite_values(dtype_name)[:, None], len(BIASES), axis=1)
    return x.astype(dtype), np.array(BIASES).astype(dtype)


@functools.lru_cache(maxsize=None)
def exact_results(dtype_name, act):
    """{order: the float64 reference of act's order-th derivative at x + bias} for inputs(dtype_name)."""
    x, bias = inputs(dtype_name)
    v = x.astype(np.float64) + bias.astype(np.float64)
    with np.errstate(all="ignore"):
        return {order: np.asarray(fn[act](v), np.float64) for order, fn in ORDERS.items()}


def figures(got, exact, dtype_name):
    """(fraction correctly rounded, largest error in ulps) per column (bias) of got against exact.
    An infinite or NaN result counts as right only where it is the reference's."""
    got = np.asarray(got, np.float64)
    right = (got == round_correctly(exact, dtype_name)) | (np.isnan(got) & np.isnan(exact))
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(got - exact) / ulp(exact, dtype_name)
    error = np.where(right, np.minimum(error, 0.5), np.where(np.isfinite(error), error, np.inf))
    return right.mean(axis=0), error.max(axis=0)


def outside_tolerance(got, exact, dtype_name):
    """Where got is not within the dtype's tolerance (tests/tolerances.py) of exact; NaN and
    infinities must be the reference's."""
    rtol, atol = TOLERANCE[dtype_name]
    got = np.asarray(got, np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(got - exact) <= atol + rtol * np.abs(exact)
    return ~(close | (got == exact) | (np.isnan(got) & np.isnan(exact)))


def twinop_results(numpy_module, x, bias, act):
    """{result name: array} from twinop's numpy binding (the module given: it may be another build)."""
    ones = np.ones_like(x)
    dx, _ = numpy_module.bias_act_backward(ones, x, bias, act)
    d_dy, d_x, _ = numpy_module.bias_act_double_backward(ones, ones, x, bias, act)
    return {"forward y": numpy_module.bias_act(x, bias, act), "backward dx": dx,
            "double backward d_dy": d_dy, "double backward d_x": d_x}


TORCH_ACTIVATIONS = {"gelu": ("gelu", {}), "gelu_tanh": ("gelu", {"approximate": "tanh"}),
                     "silu": ("silu", {}), "relu": ("relu", {})}


def torch_results(x, bias, act):
    """The same results from PyTorch's own ops in the dtype, as a user composes them: F.act(x + b),
    its gradient by autograd with dy = 1, and the gradient of that gradient with g = 1."""
    import torch
    import torch.nn.functional as F

    dtype = getattr(torch, str(x.dtype))
    name, kwargs = TORCH_ACTIVATIONS[act]
    x_t = torch.from_numpy(x.astype(np.float32)).to(dtype).requires_grad_()
    b_t = torch.from_numpy(bias.astype(np.float32)).to(dtype)
    y = getattr(F, name)(x_t + b_t, **kwargs)
    (dx,) = torch.autograd.grad(y, x_t, torch.ones_like(y), create_graph=True)
    # d_dy = d(g . dx)/d(dy) = g act'(v), which autograd computes as dx itself; d_x = g act''(v).
    (d_x,) = torch.autograd.grad(dx, x_t, torch.ones_like(dx), allow_unused=True, materialize_grads=True)
    return {name: t.detach().float().numpy().astype(np.float64)
            for name, t in {"forward y": y, "backward dx": dx, "double backward d_dy": dx,
                            "double backward d_x": d_x}.items()}


@functools.lru_cache(maxsize=None)
def torch_figures(dtype_name, act):
    """{result name: (fractions, largest errors)} of PyTorch's own ops, per bias."""
    x, bias = inputs(dtype_name)
    exact = exact_results(dtype_name, act)
    return {name: figures(got, exact[RESULTS[name]], dtype_name)
            for name, got in torch_results(x, bias, act).items()}
