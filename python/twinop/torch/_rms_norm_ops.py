"""The RMSNorm ops' Python side (their C++ is csrc/torch/rms_norm.cpp): fake kernels for
torch.compile and export, autograd, batching rules for torch.func.vmap, and the math of the
backward and of forward mode as torch ops, which the differentiable entry points share
(_rms_norm.py).

The ops' autograd: the forward's backward is the fused backward op, with the forward's rstd; the
backward op's own derivative is backward_vjp, torch ops, which torch.autograd differentiates
further to any order (rstd is an input of the backward op, and its path to x runs through the
forward op's rstd output).
"""
import torch

from ._batching import batch_first, row_example, rows_example, sum_per_example

ops = torch.ops.twinop
PREFIX = "twinop.rms_norm: "


def compute_dtype(dtype):
    """The kernels compute float16 and bfloat16 in float32, float64 in float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# twinop-feature: shapes
# ---- fake kernels: the output shapes and dtypes, and the rules a trace can check ----


def _check_like_x(x, others):
    for name, t in others.items():
        torch._check(t.device == x.device, lambda: f"{PREFIX}{name} must be on the device of x ({x.device}); got {t.device}")


def _check_weight(x, weight):
    torch._check(weight.dim() == 1, lambda: f"{PREFIX}weight must be 1-D; got shape {list(weight.shape)}")
    torch._check(weight.shape[0] == x.shape[-1],
                 lambda: f"{PREFIX}weight must have x.shape[-1] = {x.shape[-1]} elements; got {weight.shape[0]}")


def _empty_rstd(x):
    return x.new_empty(x.shape[:-1], dtype=compute_dtype(x.dtype))


def _empty_like(t):
    return torch.empty_like(t, memory_format=torch.contiguous_format)


@torch.library.register_fake("twinop::rms_norm")
def _rms_norm_fake(x, weight, eps, offset):
    _check_like_x(x, {"weight": weight})
    _check_weight(x, weight)
    return _empty_like(x), _empty_rstd(x)


@torch.library.register_fake("twinop::add_rms_norm")
def _add_rms_norm_fake(x, residual, weight, eps, offset):
    _check_like_x(x, {"weight": weight, "residual": residual})
    _check_weight(x, weight)
    return _empty_like(x), _empty_like(x), _empty_rstd(x)


@torch.library.register_fake("twinop::rms_norm_backward")
def _rms_norm_backward_fake(dy, x, rstd, weight, offset):
    _check_like_x(x, {"weight": weight, "rstd": rstd, "dy": dy})
    _check_weight(x, weight)
    return _empty_like(x), _empty_like(weight)


@torch.library.register_fake("twinop::add_rms_norm_backward")
def _add_rms_norm_backward_fake(dy, ds, s, rstd, weight, offset):
    _check_like_x(s, {"weight": weight, "rstd": rstd, "dy": dy, "ds": ds})
    _check_weight(s, weight)
    return _empty_like(s), _empty_like(weight)


# twinop-feature: second-order
# ---- the math as torch ops, in the kernels' compute dtype, rounded once ----
#
# Per row, with C = x.shape[-1], w' = weight + offset, g = dy w' and D = sum(g x):
#   forward   y = rstd x w',  rstd = (mean(x^2) + eps)^(-1/2),  d rstd / dx = -rstd^3 x / C
#   backward  dx = rstd g - (rstd^3 D / C) x (+ ds),  dweight = sum over rows of dy x rstd
# The derivatives of the backward below treat rstd as an input of its own, as the backward op
# takes it; a caller whose rstd depends on x adds that path with rstd_gradient.


def _rows_sum(t):
    """[..., C] -> [C]: the sum over every row."""
    return t.reshape(-1, t.shape[-1]).sum(0)


def _row_sum(t):
    return t.sum(-1, keepdim=True)


def rstd_of(x, eps):
    """rstd per row ([..., 1]), in the compute dtype, as torch ops: differentiable in x."""
    xc = x.to(compute_dtype(x.dtype))
    return torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps)


def rstd_gradient(d_rstd, x, rstd):
    """The gradient at x of a gradient d_rstd ([..., 1]) arriving at rstd ([..., 1])."""
    return -(d_rstd * rstd.pow(3)) * x.to(rstd.dtype) / x.shape[-1]


# twinop-feature: forward-mode
def tangent(x, t_x, weight, t_weight, eps, offset):
    """The tangent of y = rms_norm(x, weight) given the tangents of x and weight (None where none)."""
    compute = compute_dtype(x.dtype)
    xc, rstd = x.to(compute), rstd_of(x, eps)
    t_y = torch.zeros_like(xc)
    if t_x is not None:
        tc = t_x.to(compute)
        t_y = (rstd * tc - rstd.pow(3) * xc * (xc * tc).mean(-1, keepdim=True)) * (weight.to(compute) + offset)
    if t_weight is not None:
        t_y = t_y + xc * rstd * t_weight.to(compute)
    return t_y.to(x.dtype)


# twinop-feature: second-order
def backward_vjp(a, b, dy, x, rstd, weight, offset):
    """(d_dy, d_x, d_rstd, d_weight): the gradients of the backward's inputs, given a arriving at dx
    and b at dweight (None where none arrives); rstd ([..., 1]) an input of its own, d_rstd
    [..., 1], all in the compute dtype."""
    compute = rstd.dtype
    dyc, xc = dy.to(compute), x.to(compute)
    w = weight.to(compute) + offset
    g, cols = dyc * w, x.shape[-1]
    a = torch.zeros_like(xc) if a is None else a.to(compute)
    row_part = rstd * a - (rstd.pow(3) / cols) * _row_sum(a * xc) * xc  # d dx / d g, applied to a
    d_dy, d_x = w * row_part, -(rstd.pow(3) / cols) * (_row_sum(a * xc) * g + _row_sum(g * xc) * a)
    d_rstd = _row_sum(a * g) - (3 * rstd.pow(2) / cols) * _row_sum(g * xc) * _row_sum(a * xc)
    d_weight = _rows_sum(dyc * row_part)
    if b is not None:
        bc = b.to(compute)
        d_dy, d_x = d_dy + rstd * bc * xc, d_x + rstd * bc * dyc
        d_rstd = d_rstd + _row_sum(bc * dyc * xc)
    return d_dy, d_x, d_rstd, d_weight


def differentiable_backward(dy, x, weight, eps, offset):
    """(dx, dweight) with rstd computed from x, as torch ops: differentiable in dy, x and weight
    (the formula the Functions of _rms_norm.py differentiate for second order)."""
    compute = compute_dtype(x.dtype)
    xc, dyc, rstd = x.to(compute), dy.to(compute), rstd_of(x, eps)
    g = dyc * (weight.to(compute) + offset)
    dx = rstd * g - (rstd.pow(3) / x.shape[-1]) * _row_sum(g * xc) * xc
    return dx.to(x.dtype), _rows_sum(dyc * xc * rstd).to(weight.dtype)


# twinop-feature: gradient
# ---- autograd of the raw ops: the backward op, whose own derivative is backward_vjp ----


def _rms_norm_setup_context(ctx, inputs, output):
    x, weight, eps, offset = inputs
    ctx.save_for_backward(x, weight, output[1])
    ctx.offset = offset
    ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None, not zeros


def _raw_gradients(dy, ds, d_rstd, x, weight, rstd, offset):
    """(dx, dweight) of the raw forward op, from the gradients at (y, [s,] rstd) (None where none)."""
    if dy is not None:
        dx, dweight = (ops.rms_norm_backward(dy, x, rstd, weight, offset) if ds is None
                       else ops.add_rms_norm_backward(dy, ds, x, rstd, weight, offset))
    else:
        dx, dweight = (torch.zeros_like(x) if ds is None else ds), torch.zeros_like(weight)
    if d_rstd is not None:  # only callers of the raw ops see rstd
        dx = dx + rstd_gradient(d_rstd.unsqueeze(-1), x, rstd.unsqueeze(-1)).to(x.dtype)
    return dx, dweight


def _rms_norm_backward(ctx, dy, d_rstd):
    x, weight, rstd = ctx.saved_tensors
    return (*_raw_gradients(dy, None, d_rstd, x, weight, rstd, ctx.offset), None, None)


def _add_rms_norm_setup_context(ctx, inputs, output):
    _, _, weight, eps, offset = inputs
    _, s, rstd = output
    ctx.save_for_backward(s, weight, rstd)
    ctx.offset = offset
    ctx.set_materialize_grads(False)


def _add_rms_norm_backward(ctx, dy, ds, d_rstd):
    s, weight, rstd = ctx.saved_tensors
    dx, dweight = _raw_gradients(dy, ds, d_rstd, s, weight, rstd, ctx.offset)
    return dx, dx, dweight, None, None  # d_residual = dx: s = x + residual


# twinop-feature: second-order
def _backward_setup_context(ctx, inputs, output):
    *tensors, offset = inputs
    ctx.save_for_backward(*tensors)
    ctx.offset = offset
    ctx.set_materialize_grads(False)  # backward_vjp takes None; autograd's zeros would be plain tensors


def _backward_backward(ctx, a, b):
    dy, x, rstd, weight = ctx.saved_tensors
    d_dy, d_x, d_rstd, d_weight = backward_vjp(a, b, dy, x, rstd.unsqueeze(-1), weight, ctx.offset)
    return d_dy.to(dy.dtype), d_x.to(x.dtype), d_rstd.squeeze(-1), d_weight.to(weight.dtype), None


def _add_backward_backward(ctx, a, b):
    dy, ds, s, rstd, weight = ctx.saved_tensors
    d_dy, d_s, d_rstd, d_weight = backward_vjp(a, b, dy, s, rstd.unsqueeze(-1), weight, ctx.offset)
    d_ds = torch.zeros_like(ds) if a is None else a  # dx = ... + ds
    return d_dy.to(dy.dtype), d_ds, d_s.to(s.dtype), d_rstd.squeeze(-1), d_weight.to(weight.dtype), None


# twinop-feature: gradient
torch.library.register_autograd("twinop::rms_norm", _rms_norm_backward, setup_context=_rms_norm_setup_context)
torch.library.register_autograd("twinop::add_rms_norm", _add_rms_norm_backward,
                                setup_context=_add_rms_norm_setup_context)
# twinop-feature: second-order
torch.library.register_autograd("twinop::rms_norm_backward", _backward_backward,
                                setup_context=_backward_setup_context)
torch.library.register_autograd("twinop::add_rms_norm_backward", _add_backward_backward,
                                setup_context=_backward_setup_context)


# twinop-feature: batching
# ---- batching rules: one call per vmap, never a loop over examples ----
#
# A vmapped x of shape [B, ..., C] is a bigger x. A weight batched per example is applied outside
# the kernel: the op runs in the compute dtype with weight 1 and offset 0, and y is scaled by each
# example's weight + offset, in the compute dtype, then rounded once: the kernel's own arithmetic.
# dweight is a sum per example: each example's rows of dy * x_hat, in the compute dtype.


def _per_example_weight(weight, dim, like, offset):
    """weight + offset per example, [B, 1..., C] to broadcast against a batch-first `like`."""
    w = batch_first(weight, dim, like.shape[0]).to(compute_dtype(like.dtype)) + offset
    return w.reshape(w.shape[0], *([1] * (like.dim() - 2)), w.shape[-1])


def _rstd_example(rstd, one_x):
    return torch.empty(one_x.shape[:-1], dtype=rstd.dtype)


def _forward_batched(info, x, x_dim, weight, weight_dim, eps, offset):
    """(y, rstd) batch-first."""
    x = batch_first(x, x_dim, info.batch_size)
    if weight_dim is None:
        return ops.rms_norm(x, weight, eps, offset)
    xc = x.to(compute_dtype(x.dtype))
    x_hat, rstd = ops.rms_norm(xc, xc.new_ones(xc.shape[-1]), eps, 0.0)
    return (x_hat * _per_example_weight(weight, weight_dim, xc, offset)).to(x.dtype), rstd


@torch.library.register_vmap("twinop::rms_norm")
def _rms_norm_vmap(info, in_dims, x, weight, eps, offset):
    x_dim, weight_dim, _, _ = in_dims
    ops.rms_norm(rows_example(x, x_dim), row_example(weight, weight_dim), eps, offset)
    return _forward_batched(info, x, x_dim, weight, weight_dim, eps, offset), (0, 0)


@torch.library.register_vmap("twinop::add_rms_norm")
def _add_rms_norm_vmap(info, in_dims, x, residual, weight, eps, offset):
    x_dim, residual_dim, weight_dim, _, _ = in_dims
    ops.add_rms_norm(rows_example(x, x_dim), rows_example(residual, residual_dim), row_example(weight, weight_dim),
                     eps, offset)
    x, residual = batch_first(x, x_dim, info.batch_size), batch_first(residual, residual_dim, info.batch_size)
    if weight_dim is None:
        return ops.add_rms_norm(x, residual, weight, eps, offset), (0, 0, 0)
    s = (x.to(compute_dtype(x.dtype)) + residual.to(compute_dtype(x.dtype))).to(x.dtype)  # rounded, as the kernel
    y, rstd = _forward_batched(info, s, 0, weight, weight_dim, eps, offset)
    return (y, s, rstd), (0, 0, 0)


def _backward_batched(info, dy, dy_dim, ds, ds_dim, x, x_dim, rstd, rstd_dim, weight, weight_dim, offset):
    batch = info.batch_size
    dy, x, rstd = batch_first(dy, dy_dim, batch), batch_first(x, x_dim, batch), batch_first(rstd, rstd_dim, batch)
    compute = compute_dtype(x.dtype)
    xc, dyc = x.to(compute), dy.to(compute)
    w = _per_example_weight(weight, weight_dim, xc, offset)
    # the kernel's g = dy * (weight + offset), formed here per example; the op then runs with weight 1
    dx, _ = ops.rms_norm_backward(dyc * w, xc, rstd, xc.new_ones(xc.shape[-1]), 0.0)
    if ds is not None:
        dx = dx + batch_first(ds, ds_dim, batch).to(compute)
    dweight = sum_per_example(dyc * (xc * rstd.unsqueeze(-1)))
    return dx.to(x.dtype), dweight.to(weight.dtype)


@torch.library.register_vmap("twinop::rms_norm_backward")
def _rms_norm_backward_vmap(info, in_dims, dy, x, rstd, weight, offset):
    dy_dim, x_dim, rstd_dim, weight_dim, _ = in_dims
    one_x = rows_example(x, x_dim)
    ops.rms_norm_backward(rows_example(dy, dy_dim), one_x, _rstd_example(rstd, one_x), row_example(weight, weight_dim),
                          offset)
    return _backward_batched(info, dy, dy_dim, None, None, x, x_dim, rstd, rstd_dim, weight, weight_dim, offset), (0, 0)


@torch.library.register_vmap("twinop::add_rms_norm_backward")
def _add_rms_norm_backward_vmap(info, in_dims, dy, ds, s, rstd, weight, offset):
    dy_dim, ds_dim, s_dim, rstd_dim, weight_dim, _ = in_dims
    one_s = rows_example(s, s_dim)
    ops.add_rms_norm_backward(rows_example(dy, dy_dim), rows_example(ds, ds_dim), one_s, _rstd_example(rstd, one_s),
                              row_example(weight, weight_dim), offset)
    return _backward_batched(info, dy, dy_dim, ds, ds_dim, s, s_dim, rstd, rstd_dim, weight, weight_dim, offset), (0, 0)
