"""rms_norm and add_rms_norm: the differentiable entry points."""
import functools
import numbers

import jax

from .. import _layouts
from . import _rms_norm_vmap  # noqa: F401  (the primitives' batching rules)
from ._library import check_rms_norm_args
from ._rms_norm_ops import add_rms_norm_p, bind, rms_norm_p
from ._sharding import partitioned


def _attribute(name, value):
    """eps or offset as the Python float jax.jit keys its compilation on; its value is checked
    with the arrays (finite; eps >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"twinop.rms_norm: {name} must be a float; got {type(value).__name__}")
    return float(value)


def rms_norm(x, weight, eps=1e-6, *, offset=0.0):
    """y = x / sqrt(mean(x^2 over the last axis) + eps) * (weight + offset), computed in float32
    (float64 for float64) and rounded once to x's dtype. weight: shape (x.shape[-1],), x's dtype or
    float32 for float16/bfloat16 x. Differentiable in x and weight in reverse and forward mode
    (jax.grad through the fused backward kernel; second order and beyond through its formula),
    under jax.jit, jax.vmap and sharded jit or shard_map."""
    return _rms_norm(x, weight, eps=_attribute("eps", eps), offset=_attribute("offset", offset))


def add_rms_norm(x, residual, weight, eps=1e-6, *, offset=0.0):
    """(y, s): s = x + residual (in x's dtype, as x + residual is), y = rms_norm(s, weight, eps,
    offset=offset), in one pass: the residual add and norm of a pre-norm transformer block."""
    return _add_rms_norm(x, residual, weight, eps=_attribute("eps", eps), offset=_attribute("offset", offset))


# Jitted, as jax.numpy's functions are; eps and offset are static, as a kernel's attributes.
@functools.partial(jax.jit, static_argnames=("eps", "offset"))
def _rms_norm(x, weight, *, eps, offset):
    check_rms_norm_args(eps, offset, x, weight)  # per example under vmap, before the batch is folded in
    y, _ = partitioned(lambda x, weight: bind(rms_norm_p, x, weight, eps=eps, offset=offset),
                       _layouts.OPS["rms_norm"], x, weight)
    return y


@functools.partial(jax.jit, static_argnames=("eps", "offset"))
def _add_rms_norm(x, residual, weight, *, eps, offset):
    check_rms_norm_args(eps, offset, x, residual, weight)
    y, s, _ = partitioned(lambda *arrays: bind(add_rms_norm_p, *arrays, eps=eps, offset=offset),
                          _layouts.OPS["add_rms_norm"], x, residual, weight)
    return y, s
