"""Batching rules (jax.custom_batching.custom_vmap) for the three ops: one call per vmap, never a
loop over examples.

The batch becomes more rows: a vmapped x of shape [B, ..., C] is just a bigger x. Two cases
need more than that:
  - a batched bias (or g_bias) differs per example: it is added to x (or g) first, in the
    kernels' compute precision, and the op runs with a zero bias: the same numbers the kernel
    would compute;
  - dbias (d_bias) is a sum per example: the ops run in compute precision, and dx (d_x) is
    summed over each example's rows, then rounded once, as the kernel does.
Each rule first checks one example's arguments: folded into rows, a wrong shape could pass.
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from . import _ffi
from ._auto_partitioning import auto_partitioned
from ._library import check_args


class Ops(NamedTuple):
    forward: custom_vmap
    backward: custom_vmap
    double_backward: custom_vmap


@functools.cache
def batched(act):
    """The three ops for one activation (a custom_vmap takes arrays only), with the rules below."""
    ops = Ops(*(custom_vmap(auto_partitioned(op, act))
                for op in (_ffi.forward, _ffi.backward, _ffi.double_backward)))
    ops.forward.def_vmap(functools.partial(_forward_rule, act))
    ops.backward.def_vmap(functools.partial(_backward_rule, act))
    ops.double_backward.def_vmap(functools.partial(_double_backward_rule, act))
    return ops


def _compute_dtype(dtype):
    """The kernels compute float16 and bfloat16 in float32."""
    return jnp.float32 if dtype in (jnp.float16, jnp.bfloat16) else dtype


def _check_one_example(act, arrays, in_batched):
    check_args(act, *(jax.ShapeDtypeStruct(a.shape[1:] if b else a.shape, a.dtype) for a, b in zip(arrays, in_batched)))


def _batch_first(a, batched_, size, dtype):
    """a in dtype, with a leading batch axis (an unbatched a is broadcast along a new one)."""
    return (a if batched_ else jnp.broadcast_to(a, (size, *a.shape))).astype(dtype)


def _per_row(row, like):
    """A batched [B, C] row vector, shaped to broadcast against a batch-first `like`."""
    return row.reshape(row.shape[0], *([1] * (like.ndim - 2)), row.shape[-1]).astype(like.dtype)


def _sum_per_example(t):
    """[B, ..., C] -> [B, C]: the column sums of each example's rows."""
    return t.sum(axis=tuple(range(1, t.ndim - 1)))


def _forward_rule(act, axis_size, in_batched, x, bias):
    _check_one_example(act, (x, bias), in_batched)
    x_batched, bias_batched = in_batched
    if not bias_batched:
        return batched(act).forward(_batch_first(x, x_batched, axis_size, x.dtype), bias), True
    v = _batch_first(x, x_batched, axis_size, _compute_dtype(x.dtype))
    v = v + _per_row(bias, v)
    return batched(act).forward(v, jnp.zeros(v.shape[-1], v.dtype)).astype(x.dtype), True


def _backward_rule(act, axis_size, in_batched, dy, x, bias):
    _check_one_example(act, (dy, x, bias), in_batched)
    dy_batched, x_batched, bias_batched = in_batched
    dtype, compute = x.dtype, _compute_dtype(x.dtype)
    dy, x = _batch_first(dy, dy_batched, axis_size, compute), _batch_first(x, x_batched, axis_size, compute)
    if bias_batched:
        x, bias = x + _per_row(bias, x), jnp.zeros(x.shape[-1], compute)
    dx, _ = batched(act).backward(dy, x, bias.astype(compute))
    return (dx.astype(dtype), _sum_per_example(dx).astype(dtype)), (True, True)


def _double_backward_rule(act, axis_size, in_batched, g, g_bias, dy, x, bias):
    _check_one_example(act, (g, g_bias, dy, x, bias), in_batched)
    g_batched, g_bias_batched, dy_batched, x_batched, bias_batched = in_batched
    dtype, compute = x.dtype, _compute_dtype(x.dtype)
    g, dy, x = (_batch_first(a, b, axis_size, compute) for a, b in ((g, g_batched), (dy, dy_batched), (x, x_batched)))
    if g_bias_batched:
        g, g_bias = g + _per_row(g_bias, g), jnp.zeros(g.shape[-1], compute)
    if bias_batched:
        x, bias = x + _per_row(bias, x), jnp.zeros(x.shape[-1], compute)
    d_dy, d_x, _ = batched(act).double_backward(g, g_bias.astype(compute), dy, x, bias.astype(compute))
    return (d_dy.astype(dtype), d_x.astype(dtype), _sum_per_example(d_x).astype(dtype)), (True, True, True)
