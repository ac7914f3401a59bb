"""Batching rules (torch.library.register_vmap) for the three ops: one call per vmap, never a
loop over examples, and none of PyTorch's per-example fallback.

The batch becomes more rows: a vmapped x of shape [B, ..., C] is just a bigger x. Where a bias (or
g_bias) is batched, or dbias (d_bias) is wanted per example, the batch becomes more columns instead:
every argument laid out with C * B columns, each column's B examples side by side, a bias as one
such row. The kernel then adds each example's bias to its own columns and sums each example's
columns apart, in the dtype it was given: the numbers one call per example computes.
"""
import torch

ops = torch.ops.twinop


def _batch_first(t, dim, batch_size):
    """t with its vmapped dimension first; an unbatched t is expanded along a new first one."""
    return t.movedim(dim, 0) if dim is not None else t.expand(batch_size, *t.shape)


def _columns_per_example(t, dim, batch_size):
    """[B, ..., C] (t's vmapped dimension dim, or none) -> [..., C * B]: each column of every row
    holds the B examples' values side by side."""
    t = _batch_first(t, dim, batch_size)
    return t.movedim(0, -1).reshape(*t.shape[1:-1], t.shape[-1] * batch_size)


def _examples_from_columns(t, batch_size, columns):
    """[..., C * B] -> [B, ..., C] (C = columns), the inverse of _columns_per_example."""
    return t.reshape(*t.shape[:-1], columns, batch_size).movedim(-1, 0)


def _x_stand_in(x, dim):
    """An empty CPU tensor with what the ops' argument checks read of one example of x: its rank,
    its last size and its dtype."""
    shape = [n for k, n in enumerate(x.shape) if k != dim]
    return torch.empty([0] * (len(shape) - 1) + shape[-1:], dtype=x.dtype)


def _stand_in(row, dim):
    """One example of a bias-like argument (small), as an empty CPU tensor of its shape and dtype."""
    return torch.empty([n for k, n in enumerate(row.shape) if k != dim], dtype=row.dtype)


@torch.library.register_vmap("twinop::bias_act")
def _bias_act_vmap(info, in_dims, x, bias, act):
    x_dim, bias_dim, _ = in_dims
    one_bias = _stand_in(bias, bias_dim)
    ops.bias_act(_x_stand_in(x, x_dim), one_bias, act)
    if bias_dim is None:
        return ops.bias_act(_batch_first(x, x_dim, info.batch_size), bias, act), 0
    batch, columns = info.batch_size, one_bias.shape[-1]
    y = ops.bias_act(_columns_per_example(x, x_dim, batch), _columns_per_example(bias, bias_dim, batch), act)
    return _examples_from_columns(y, batch, columns), 0


@torch.library.register_vmap("twinop::bias_act_backward")
def _bias_act_backward_vmap(info, in_dims, dy, x, bias, act):
    dy_dim, x_dim, bias_dim, _ = in_dims
    one_x = _x_stand_in(x, x_dim)
    ops.bias_act_backward(one_x.to(dy.dtype), one_x, _stand_in(bias, bias_dim), act)
    batch, columns = info.batch_size, one_x.shape[-1]
    dx, dbias = ops.bias_act_backward(*(_columns_per_example(t, d, batch) for t, d in zip((dy, x, bias), in_dims)),
                                      act)
    return (_examples_from_columns(dx, batch, columns), _examples_from_columns(dbias, batch, columns)), (0, 0)


@torch.library.register_vmap("twinop::bias_act_double_backward")
def _bias_act_double_backward_vmap(info, in_dims, g, g_bias, dy, x, bias, act):
    g_dim, g_bias_dim, dy_dim, x_dim, bias_dim, _ = in_dims
    one_x = _x_stand_in(x, x_dim)
    ops.bias_act_double_backward(one_x.to(g.dtype), _stand_in(g_bias, g_bias_dim), one_x.to(dy.dtype), one_x,
                                 _stand_in(bias, bias_dim), act)
    batch, columns = info.batch_size, one_x.shape[-1]
    args = (_columns_per_example(t, d, batch) for t, d in zip((g, g_bias, dy, x, bias), in_dims))
    results = ops.bias_act_double_backward(*args, act)
    return tuple(_examples_from_columns(t, batch, columns) for t in results), (0, 0, 0)
