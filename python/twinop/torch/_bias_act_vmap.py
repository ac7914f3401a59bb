"""Batching rules (torch.library.register_vmap) for the three ops: one call per vmap, never a
loop over examples, and none of PyTorch's per-example fallback.

The batch becomes more rows: a vmapped x of shape [B, ..., C] is just a bigger x. Where a bias (or
g_bias) is batched, or dbias (d_bias) is wanted per example, the batch becomes more columns instead:
every argument laid out with C * B columns, each column's B examples side by side, a bias as one
such row. The kernel then adds each example's bias to its own columns and sums each example's
columns apart, in the dtype it was given: the numbers one call per example computes.
"""
import torch

from ._batching import batch_first, columns_per_example, examples_from_columns, row_example, rows_example

ops = torch.ops.twinop


@torch.library.register_vmap("twinop::bias_act")
def _bias_act_vmap(info, in_dims, x, bias, act):
    x_dim, bias_dim, _ = in_dims
    one_bias = row_example(bias, bias_dim)
    ops.bias_act(rows_example(x, x_dim), one_bias, act)
    if bias_dim is None:
        return ops.bias_act(batch_first(x, x_dim, info.batch_size), bias, act), 0
    batch, columns = info.batch_size, one_bias.shape[-1]
    y = ops.bias_act(columns_per_example(x, x_dim, batch), columns_per_example(bias, bias_dim, batch), act)
    return examples_from_columns(y, batch, columns), 0


@torch.library.register_vmap("twinop::bias_act_backward")
def _bias_act_backward_vmap(info, in_dims, dy, x, bias, act):
    dy_dim, x_dim, bias_dim, _ = in_dims
    one_x = rows_example(x, x_dim)
    ops.bias_act_backward(one_x.to(dy.dtype), one_x, row_example(bias, bias_dim), act)
    batch, columns = info.batch_size, one_x.shape[-1]
    dx, dbias = ops.bias_act_backward(*(columns_per_example(t, d, batch) for t, d in zip((dy, x, bias), in_dims)),
                                      act)
    return (examples_from_columns(dx, batch, columns), examples_from_columns(dbias, batch, columns)), (0, 0)


@torch.library.register_vmap("twinop::bias_act_double_backward")
def _bias_act_double_backward_vmap(info, in_dims, g, g_bias, dy, x, bias, act):
    g_dim, g_bias_dim, dy_dim, x_dim, bias_dim, _ = in_dims
    one_x = rows_example(x, x_dim)
    ops.bias_act_double_backward(one_x.to(g.dtype), row_example(g_bias, g_bias_dim), one_x.to(dy.dtype), one_x,
                                 row_example(bias, bias_dim), act)
    batch, columns = info.batch_size, one_x.shape[-1]
    args = (columns_per_example(t, d, batch) for t, d in zip((g, g_bias, dy, x, bias), in_dims))
    results = ops.bias_act_double_backward(*args, act)
    return tuple(examples_from_columns(t, batch, columns) for t in results), (0, 0, 0)
