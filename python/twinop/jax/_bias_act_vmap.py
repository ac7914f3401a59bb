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

from jax.interpreters import batching

from ._batching import batch_first, columns_per_example, examples_from_columns
from ._bias_act_ops import backward_p, backward_tangent_p, bind, double_backward_p, forward_p, tangent_p


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
