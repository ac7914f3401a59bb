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

from ._batching import batch_first, per_row, row_example, rows_example, sum_per_example

ops = torch.ops.twinop


def _compute_dtype(dtype):
    """The kernels compute float16 and bfloat16 in float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@torch.library.register_vmap("twinop::bias_act")
def _bias_act_vmap(info, in_dims, x, bias, act):
    x_dim, bias_dim, _ = in_dims
    ops.bias_act(rows_example(x, x_dim), row_example(bias, bias_dim), act)
    x = batch_first(x, x_dim, info.batch_size)
    if bias_dim is None:
        return ops.bias_act(x, bias, act), 0
    compute = _compute_dtype(x.dtype)
    v = x.to(compute) + per_row(bias, bias_dim, x).to(compute)
    return ops.bias_act(v, v.new_zeros(v.shape[-1]), act).to(x.dtype), 0


@torch.library.register_vmap("twinop::bias_act_backward")
def _bias_act_backward_vmap(info, in_dims, dy, x, bias, act):
    dy_dim, x_dim, bias_dim, _ = in_dims
    one_x = rows_example(x, x_dim)
    ops.bias_act_backward(one_x.to(dy.dtype), one_x, row_example(bias, bias_dim), act)
    dtype, compute = x.dtype, _compute_dtype(x.dtype)
    dy = batch_first(dy, dy_dim, info.batch_size).to(compute)
    x = batch_first(x, x_dim, info.batch_size).to(compute)
    if bias_dim is None:
        bias = bias.to(compute)
    else:
        x, bias = x + per_row(bias, bias_dim, x).to(compute), x.new_zeros(x.shape[-1])
    dx, _ = ops.bias_act_backward(dy, x, bias, act)
    return (dx.to(dtype), sum_per_example(dx).to(dtype)), (0, 0)


@torch.library.register_vmap("twinop::bias_act_double_backward")
def _bias_act_double_backward_vmap(info, in_dims, g, g_bias, dy, x, bias, act):
    g_dim, g_bias_dim, dy_dim, x_dim, bias_dim, _ = in_dims
    one_x = rows_example(x, x_dim)
    ops.bias_act_double_backward(one_x.to(g.dtype), row_example(g_bias, g_bias_dim), one_x.to(dy.dtype), one_x,
                                 row_example(bias, bias_dim), act)
    dtype, compute = x.dtype, _compute_dtype(x.dtype)
    g, dy, x = (batch_first(t, d, info.batch_size).to(compute) for t, d in ((g, g_dim), (dy, dy_dim), (x, x_dim)))
    if g_bias_dim is None:
        g_bias = g_bias.to(compute)
    else:
        g, g_bias = g + per_row(g_bias, g_bias_dim, g).to(compute), g.new_zeros(g.shape[-1])
    if bias_dim is None:
        bias = bias.to(compute)
    else:
        x, bias = x + per_row(bias, bias_dim, x).to(compute), x.new_zeros(x.shape[-1])
    d_dy, d_x, _ = ops.bias_act_double_backward(g, g_bias, dy, x, bias, act)
    return (d_dy.to(dtype), d_x.to(dtype), sum_per_example(d_x).to(dtype)), (0, 0, 0)
