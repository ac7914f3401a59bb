"""Batching rules for bias_act's primitives: one call per vmap, never a loop over examples.

The batch becomes more rows: a vmapped x of shape [B, ..., C] is just a bigger x. Two cases
need more than that:
  - a batched parameter (bias, or the t_bias, g_bias added to t_x, g) differs per example: it is
    added to its rows argument first, in the kernels' compute precision, and the op runs with a
    zero parameter (float16 and bfloat16: float32's kernel, its math accurate to float32, rounded
    once; within the dtype's tolerance of theirs);
  - a column sum (dbias, d_bias) is a sum per example: the op runs in compute precision, and its
    rows result is summed over each example's rows, then rounded once, as the kernel does.
The arguments were checked per example by twinop.jax.bias_act, before the batch was folded in.
"""
import functools

import jax.numpy as jnp
from jax.interpreters import batching

from ._batching import batch_first, per_row, sum_per_example
from ._bias_act_ops import backward_p, backward_tangent_p, bind, double_backward_p, forward_p, tangent_p


def compute_dtype(dtype):
    """The kernels compute float16 and bfloat16 in float32."""
    return jnp.float32 if dtype in (jnp.float16, jnp.bfloat16) else dtype


def _rule(primitive, params_into, sums_of, args, dims, *, act):
    """params_into: {parameter argument: the rows argument it is added to}; sums_of: {column-sum
    result: the rows result it sums}."""
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    batched_params = [p for p in params_into if dims[p] is not None]
    dtype = args[params_into[next(iter(params_into))]].dtype
    compute = compute_dtype(dtype) if batched_params or sums_of else dtype
    args = [a if i in params_into and i not in batched_params else batch_first(a, dims[i], size)
            for i, a in enumerate(args)]
    args = [a.astype(compute) for a in args]
    for p in batched_params:
        args[params_into[p]] = args[params_into[p]] + per_row(args[p], args[params_into[p]])
        args[p] = jnp.zeros(args[p].shape[-1], compute)
    out = bind(primitive, *args, act=act)
    if not primitive.multiple_results:
        return out.astype(dtype), 0
    out = [sum_per_example(out[sums_of[k]]) if k in sums_of else o for k, o in enumerate(out)]
    return [o.astype(dtype) for o in out], [0] * len(out)


def _register(primitive, params_into, sums_of=None):
    batching.primitive_batchers[primitive] = functools.partial(_rule, primitive, params_into, sums_of or {})


_register(forward_p, {1: 0})  # (x, bias)
_register(tangent_p, {1: 0, 3: 2})  # (x, bias, t_x, t_bias)
_register(backward_p, {2: 1}, {1: 0})  # (dy, x, bias) -> (dx, dbias)
_register(backward_tangent_p, {2: 1, 5: 4}, {1: 0})  # (t_dy, t_x, t_bias, dy, x, bias) -> (t_dx, t_dbias)
_register(double_backward_p, {1: 0, 4: 3}, {2: 1})  # (g, g_bias, dy, x, bias) -> (d_dy, d_x, d_bias)
