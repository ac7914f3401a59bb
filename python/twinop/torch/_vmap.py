"""Batching rules (torch.library.register_vmap) for the three ops: one call per vmap, never a
loop over examples, and none of PyTorch's per-example fallback.

The batch becomes more rows: a vmapped x of shape [B, ..., C] is just a bigger x. Two cases
need more than that:
  - a batched bias (or g_bias) differs per example: it is added to x (or g) first, in the
    kernels' compute precision, and the op runs with a zero bias (float16 and bfloat16: float32's
    kernel, its math accurate to float32, rounded once; within the dtype's tolerance of theirs);
  - dbias (d_bias) is a sum per example: the ops run in compute precision, and dx (d_x) is
    summed over each example's rows, then rounded once, as the kernel does.
"""
import torch

ops = torch.ops.twinop


def _compute_dtype(dtype):
    """The kernels compute float16 and bfloat16 in float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _batch_first(t, dim, batch_size):
    """t with its vmapped dimension first; an unbatched t is expanded along a new first one."""
    return t.movedim(dim, 0) if dim is not None else t.expand(batch_size, *t.shape)


def _per_row(row, dim, like):
    """A batched [B, C] row vector, shaped to broadcast against a batch-first `like`."""
    row = row.movedim(dim, 0)
    return row.reshape(row.shape[0], *([1] * (like.dim() - 2)), row.shape[-1])


def _x_stand_in(x, dim):
    """An empty CPU tensor with what the ops' argument checks read of one example of x: its rank,
    its last size and its dtype."""
    shape = [n for k, n in enumerate(x.shape) if k != dim]
    return torch.empty([0] * (len(shape) - 1) + shape[-1:], dtype=x.dtype)


def _stand_in(row, dim):
    """One example of a bias-like argument (small), as an empty CPU tensor of its shape and dtype."""
    return torch.empty([n for k, n in enumerate(row.shape) if k != dim], dtype=row.dtype)


def _sum_per_example(t):
    """[B, ..., C] -> [B, C]: the column sums of each example's rows."""
    return t.sum(dim=tuple(range(1, t.dim() - 1))) if t.dim() > 2 else t


@torch.library.register_vmap("twinop::bias_act")
def _bias_act_vmap(info, in_dims, x, bias, act):
    x_dim, bias_dim, _ = in_dims
    ops.bias_act(_x_stand_in(x, x_dim), _stand_in(bias, bias_dim), act)
    x = _batch_first(x, x_dim, info.batch_size)
    if bias_dim is None:
        return ops.bias_act(x, bias, act), 0
    compute = _compute_dtype(x.dtype)
    v = x.to(compute) + _per_row(bias, bias_dim, x).to(compute)
    return ops.bias_act(v, v.new_zeros(v.shape[-1]), act).to(x.dtype), 0


@torch.library.register_vmap("twinop::bias_act_backward")
def _bias_act_backward_vmap(info, in_dims, dy, x, bias, act):
    dy_dim, x_dim, bias_dim, _ = in_dims
    one_x = _x_stand_in(x, x_dim)
    ops.bias_act_backward(one_x.to(dy.dtype), one_x, _stand_in(bias, bias_dim), act)
    dtype, compute = x.dtype, _compute_dtype(x.dtype)
    dy = _batch_first(dy, dy_dim, info.batch_size).to(compute)
    x = _batch_first(x, x_dim, info.batch_size).to(compute)
    if bias_dim is None:
        bias = bias.to(compute)
    else:
        x, bias = x + _per_row(bias, bias_dim, x).to(compute), x.new_zeros(x.shape[-1])
    dx, _ = ops.bias_act_backward(dy, x, bias, act)
    return (dx.to(dtype), _sum_per_example(dx).to(dtype)), (0, 0)


@torch.library.register_vmap("twinop::bias_act_double_backward")
def _bias_act_double_backward_vmap(info, in_dims, g, g_bias, dy, x, bias, act):
    g_dim, g_bias_dim, dy_dim, x_dim, bias_dim, _ = in_dims
    one_x = _x_stand_in(x, x_dim)
    ops.bias_act_double_backward(one_x.to(g.dtype), _stand_in(g_bias, g_bias_dim), one_x.to(dy.dtype), one_x,
                                 _stand_in(bias, bias_dim), act)
    dtype, compute = x.dtype, _compute_dtype(x.dtype)
    g, dy, x = (_batch_first(t, d, info.batch_size).to(compute) for t, d in ((g, g_dim), (dy, dy_dim), (x, x_dim)))
    if g_bias_dim is None:
        g_bias = g_bias.to(compute)
    else:
        g, g_bias = g + _per_row(g_bias, g_bias_dim, g).to(compute), g.new_zeros(g.shape[-1])
    if bias_dim is None:
        bias = bias.to(compute)
    else:
        x, bias = x + _per_row(bias, bias_dim, x).to(compute), x.new_zeros(x.shape[-1])
    d_dy, d_x, _ = ops.bias_act_double_backward(g, g_bias, dy, x, bias, act)
    return (d_dy.to(dtype), d_x.to(dtype), _sum_per_example(d_x).to(dtype)), (0, 0, 0)
