"""RMSNorm's derivatives as jax.numpy, in the kernels' compute dtype and rounded once: forward
mode's tangent (the primal of the linear tangent primitive) and the formulas whose JVPs give
second order (_rms_norm_ops.py). JAX differentiates these further, to any order.

Per row, with C = x.shape[-1], w' = weight + offset and rstd = (mean(x^2) + eps)^(-1/2):
  y = rstd x w'
  t_y = (rstd t_x - rstd^3 x mean(x t_x)) w' + rstd x t_weight,   t_rstd = -rstd^3 mean(x t_x)
  dx = rstd g - (rstd^3 / C) sum(g x) x  with g = dy w',   dweight = sum over rows of dy x rstd
"""
import jax.numpy as jnp


def compute_dtype(dtype):
    """The kernels compute float16 and bfloat16 in float32, float64 in float64."""
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


def rstd_of(x, eps):
    """rstd per row ([..., 1]) in the compute dtype, differentiable in x."""
    xc = x.astype(compute_dtype(x.dtype))
    return 1.0 / jnp.sqrt(jnp.mean(xc * xc, axis=-1, keepdims=True) + eps)


def _rows_sum(t):
    """[..., C] -> [C]: the sum over every row."""
    return t.reshape(-1, t.shape[-1]).sum(0)


# twinop-feature: forward-mode
def tangent(x, weight, t_x, t_weight, *, eps, offset, rstd=None):
    """y's tangent given those of x and weight; rstd ([...]) the forward's, else computed from x."""
    compute = compute_dtype(x.dtype)
    xc, tc = x.astype(compute), t_x.astype(compute)
    r = rstd_of(x, eps) if rstd is None else rstd[..., None]
    t_y = (r * tc - r**3 * xc * jnp.mean(xc * tc, axis=-1, keepdims=True)) * (weight.astype(compute) + offset)
    return (t_y + xc * r * t_weight.astype(compute)).astype(x.dtype)


def rstd_tangent(x, rstd, t_x):
    """rstd's tangent given x's."""
    compute = rstd.dtype
    return -(rstd**3) * jnp.mean(x.astype(compute) * t_x.astype(compute), axis=-1)


def add_tangent(s, weight, t_x, t_residual, t_weight, *, eps, offset, rstd=None):
    """(y, s)'s tangents for add_rms_norm: t_s = t_x + t_residual in x's dtype, as x + residual is."""
    t_s = t_x + t_residual
    return tangent(s, weight, t_s, t_weight, eps=eps, offset=offset, rstd=rstd), t_s


# twinop-feature: second-order
def backward(dy, x, weight, *, eps, offset):
    """(dx, dweight) with rstd computed from x: differentiable in dy, x and weight."""
    compute = compute_dtype(x.dtype)
    xc, dyc, r = x.astype(compute), dy.astype(compute), rstd_of(x, eps)
    g = dyc * (weight.astype(compute) + offset)
    dx = r * g - (r**3 / x.shape[-1]) * jnp.sum(g * xc, axis=-1, keepdims=True) * xc
    return dx.astype(x.dtype), _rows_sum(dyc * xc * r).astype(weight.dtype)


def add_backward(dy, ds, s, weight, *, eps, offset):
    """(dx, dweight) of add_rms_norm at its s: rms_norm's, and ds, the gradient arriving at s."""
    dx, dweight = backward(dy, s, weight, eps=eps, offset=offset)
    return dx + ds, dweight
