"""The inputs every binding is tested on, as float64 numpy arrays exactly representable in
the dtype under test, so the reference and the binding see the same numbers."""
import numpy as np
import pytest

import twinop

DTYPES = ("float32", "float64", "float16", "bfloat16")
ACTIVATIONS = twinop.ACTIVATIONS
# Odd sizes, a size-1 feature axis, 3-D, and a few thousand columns.
SHAPES = [(1,), (37,), (2, 13), (3, 5, 7), (32, 1, 32), (3, 3001)]


def numpy_dtype(name):
    """The numpy dtype of a dtype name (bfloat16 from ml_dtypes: the test skips without it)."""
    if name == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(name)


def round_to(values, dtype_name):
    """float64 values rounded to dtype_name, returned as float64."""
    if dtype_name == "bfloat16":  # keep the top 16 bits of float32, rounded to nearest even
        bits = values.astype(np.float32).view(np.uint32)
        bits = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)
        return bits.view(np.float32).astype(np.float64)
    return values.astype(dtype_name).astype(np.float64)


def make_inputs(shape, dtype_name, seed=0):
    """(x, bias, dy) for one case: values spread over both sides of every activation's knee."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 2.0, size=shape)
    bias = rng.normal(0.0, 1.0, size=shape[-1:])
    dy = rng.normal(0.0, 1.0, size=shape)
    return tuple(round_to(a, dtype_name) for a in (x, bias, dy))


def make_double_backward_inputs(shape, dtype_name, seed=0):
    """(x, bias, dy, g, g_bias) for one double-backward case: g and g_bias are the gradients
    arriving at the backward's dx and dbias."""
    x, bias, dy = make_inputs(shape, dtype_name, seed)
    rng = np.random.default_rng(seed + 1000)
    g = round_to(rng.normal(0.0, 1.0, size=shape), dtype_name)
    g_bias = round_to(rng.normal(0.0, 1.0, size=shape[-1:]), dtype_name)
    return x, bias, dy, g, g_bias


def rows_of(shape):
    """Number of terms summed into each dbias element."""
    return int(np.prod(shape[:-1], dtype=np.int64))


# x with NaN and +-Inf, and the activations' finite inputs, for the propagation tests.
SPECIAL_X = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5]])


# RMSNorm: weight of x's dtype, or float32 with float16 and bfloat16 x (mixed precision).
WEIGHT_DTYPES = {"float32": ("float32",), "float64": ("float64",), "float16": ("float16", "float32"),
                 "bfloat16": ("bfloat16", "float32")}
DTYPE_PAIRS = [(dtype, weight_dtype) for dtype in DTYPES for weight_dtype in WEIGHT_DTYPES[dtype]]
# (eps, offset) pairs: the usual epsilons, Gemma's offset of 1, and a large eps that dominates.
RMS_NORM_ATTRS = [(1e-6, 0.0), (1e-5, 1.0), (0.25, -0.5)]


def make_rms_norm_inputs(shape, dtype_name, weight_dtype_name, seed=0):
    """(x, weight, dy, residual, ds) for one RMSNorm case, exactly representable in their dtypes;
    rows of different scales, so rstd differs from row to row."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.uniform(-3.0, 3.0, size=shape[:-1] + (1,)))
    x = round_to(rng.normal(0.0, 1.0, size=shape) * scale, dtype_name)
    weight = round_to(rng.normal(1.0, 0.5, size=shape[-1:]), weight_dtype_name)
    dy, residual, ds = (round_to(rng.normal(0.0, 1.0, size=shape), dtype_name) for _ in range(3))
    return x, weight, dy, residual, ds
