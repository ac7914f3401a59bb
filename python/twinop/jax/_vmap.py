"""Batching rules for bias_act's primitives: one call per vmap, never a loop over examples.

The batch becomes more rows: a vmapped x of shape [B, ..., C] is just a bigger x. Where a
parameter (bias, or the t_bias, g_bias that go with t_x, g) is batched, or a column sum (dbias,
d_bias) is wanted per example, the batch becomes more columns instead: every argument laid out
with C * B columns, each column's B examples side by side, a parameter as one such row. The
kernel then applies each example's parameter to its own columns and sums each example's columns
apart, in the dtype it was given: the numbers one call per example computes.
The arguments were checked per example by twinop.jax.bias_act, before the batch was folded in.
"""
import functools

import jax.numpy as jnp
from jax.interpreters import batching

from ._ops import backward_p, backward_tangent_p, bind, double_backward_p, forward_p, tangent_p


def batch_first(a, dim, size):
    """a with its batch axis first (an unbatched a is broadcast along a new one)."""
    return jnp.moveaxis(a, dim, 0) if dim is not None else jnp.broadcast_to(a, (size, *a.shape))


def per_row(row, like):
    """A batched [B, C] row vector, shaped to broadcast against a batch-first `like`."""
    return row.reshape(row.shape[0], *([1] * (like.ndim - 2)), row.shape[-1]).astype(like.dtype)


def sum_per_example(t):
    """[B, ..., C] -> [B, C]: the column sums of each example's rows."""
    return t.sum(axis=tuple(range(1, t.ndim - 1)))


def columns_per_example(a):
    """Batch-first [B, ..., C] -> [..., C * B]: each column of every row holds the B examples'
    values side by side (a sharded C stays the major part of the new columns: no resharding)."""
    return jnp.moveaxis(a, 0, -1).reshape(*a.shape[1:-1], a.shape[-1] * a.shape[0])


def examples_from_columns(a, size, columns):
    """[..., C * B] -> batch-first [B, ..., C] (C = columns), the inverse of columns_per_example."""
    return jnp.moveaxis(a.reshape(*a.shape[:-1], columns, size), -1, 0)


def _rule(primitive, params, sums, args, dims, *, act):
    """params: the parameter arguments' positions; sums: whether a result is a column sum."""
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    if all(dims[p] is None for p in params) and not sums:  # more rows
        args = [a if i in params else batch_first(a, dims[i], size) for i, a in enumerate(args)]
        out = bind(primitive, *args, act=act)
        return (out, [0] * len(out)) if primitive.multiple_results else (out, 0)
    args = [batch_first(a, d, size) for a, d in zip(args, dims)]
    columns = args[0].shape[-1]
    out = bind(primitive, *map(columns_per_example, args), act=act)
    if not primitive.multiple_results:
        return examples_from_columns(out, size, columns), 0
    return [examples_from_columns(o, size, columns) for o in out], [0] * len(out)


def _register(primitive, params, sums=False):
    batching.primitive_batchers[primitive] = functools.partial(_rule, primitive, params, sums)


_register(forward_p, {1})  # (x, bias)
_register(tangent_p, {1, 3})  # (x, bias, t_x, t_bias)
_register(backward_p, {2}, sums=True)  # (dy, x, bias) -> (dx, dbias)
_register(backward_tangent_p, {2, 5}, sums=True)  # (t_dy, t_x, t_bias, dy, x, bias) -> (t_dx, t_dbias)
_register(double_backward_p, {1, 4}, sums=True)  # (g, g_bias, dy, x, bias) -> (d_dy, d_x, d_bias)
