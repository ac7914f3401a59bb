"""Batching rules for RMSNorm's primitives: one call per vmap, never a loop over examples.

A vmapped x of shape [B, ..., C] is a bigger x. A weight batched per example is applied outside the
kernel: the forward runs in the compute dtype with weight 1 and offset 0, and y is scaled by each
example's weight + offset, in the compute dtype, then rounded once, as the kernel does. dweight is a
sum per example: each example's rows of dy x rstd, in the compute dtype. The arguments were checked
per example by twinop.jax.rms_norm / add_rms_norm, before the batch was folded in.
"""
import functools

import jax
import jax.numpy as jnp
from jax.interpreters import batching

from . import _rms_norm_math as math
from ._rms_norm_ops import (add_backward_p, add_rms_norm_p, add_tangent_p, backward_p, bind, rms_norm_p,
                            tangent_p)
from ._batching import batch_first, per_row, sum_per_example


def _size(args, dims):
    return next(a.shape[d] for a, d in zip(args, dims) if d is not None)


def _per_example_weight(weight, dim, like, offset):
    """weight + offset per example in like's (compute) dtype, to broadcast against batch-first like."""
    return per_row(batch_first(weight, dim, like.shape[0]).astype(like.dtype) + offset, like)


def _normalized(x, eps):
    """(x rstd, rstd) in the compute dtype: the forward with weight 1 and offset 0."""
    xc = x.astype(math.compute_dtype(x.dtype))
    return bind(rms_norm_p, xc, jnp.ones(xc.shape[-1], xc.dtype), eps=eps, offset=0.0)


def _rms_norm_rule(args, dims, *, eps, offset):
    (x, weight), (x_dim, weight_dim) = args, dims
    x = batch_first(x, x_dim, _size(args, dims))
    if weight_dim is None:
        return bind(rms_norm_p, x, weight, eps=eps, offset=offset), (0, 0)
    x_hat, rstd = _normalized(x, eps)
    return ((x_hat * _per_example_weight(weight, weight_dim, x_hat, offset)).astype(x.dtype), rstd), (0, 0)


def _add_rms_norm_rule(args, dims, *, eps, offset):
    size = _size(args, dims)
    x, residual = (batch_first(a, d, size) for a, d in zip(args[:2], dims[:2]))
    weight, weight_dim = args[2], dims[2]
    if weight_dim is None:
        return bind(add_rms_norm_p, x, residual, weight, eps=eps, offset=offset), (0, 0, 0)
    compute = math.compute_dtype(x.dtype)
    s = (x.astype(compute) + residual.astype(compute)).astype(x.dtype)  # rounded, as the kernel rounds s
    x_hat, rstd = _normalized(s, eps)
    return ((x_hat * _per_example_weight(weight, weight_dim, x_hat, offset)).astype(x.dtype), s, rstd), (0, 0, 0)


def _tangent_rule(primitive, weights, args, dims, *, eps, offset):
    """The tangents: on folded rows where no weight (or its tangent) is batched, else their formula
    (the primitive's jax.numpy implementation) under vmap."""
    size = _size(args, dims)
    if all(dims[i] is None for i in weights):
        args = [a if i in weights else batch_first(a, d, size) for i, (a, d) in enumerate(zip(args, dims))]
        out = bind(primitive, *args, eps=eps, offset=offset)
        return out, (0 if not primitive.multiple_results else (0,) * len(out))
    out = jax.vmap(functools.partial(primitive.impl, eps=eps, offset=offset), in_axes=dims)(*args)
    return out, (0 if not primitive.multiple_results else (0,) * len(out))


def _backward_rule(args, dims, *, eps, offset):
    """dx from the kernel with g = dy (weight + offset) formed per example and weight 1; dweight
    summed per example."""
    size = _size(args, dims)
    *rows, weight = [a if i == len(args) - 1 else batch_first(a, d, size) for i, (a, d) in enumerate(zip(args, dims))]
    dy, ds, x, rstd = rows if len(rows) == 4 else (rows[0], None, *rows[1:])
    compute = math.compute_dtype(x.dtype)
    xc, dyc = x.astype(compute), dy.astype(compute)
    w = _per_example_weight(weight, dims[-1], xc, offset)
    dx, _ = bind(backward_p, dyc * w, xc, rstd, jnp.ones(xc.shape[-1], compute), eps=eps, offset=0.0)
    if ds is not None:
        dx = dx + ds.astype(compute)
    dweight = sum_per_example(dyc * xc * rstd[..., None])
    return (dx.astype(x.dtype), dweight.astype(weight.dtype)), (0, 0)


batching.primitive_batchers[rms_norm_p] = _rms_norm_rule
batching.primitive_batchers[add_rms_norm_p] = _add_rms_norm_rule
batching.primitive_batchers[tangent_p] = functools.partial(_tangent_rule, tangent_p, (2, 4))  # weight, t_weight
batching.primitive_batchers[add_tangent_p] = functools.partial(_tangent_rule, add_tangent_p, (2, 5))
batching.primitive_batchers[backward_p] = _backward_rule
batching.primitive_batchers[add_backward_p] = _backward_rule
