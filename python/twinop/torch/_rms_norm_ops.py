"""The RMSNorm ops' Python side (their C++ is csrc/torch/rms_norm.cpp): fake kernels for
torch.compile and export, autograd, batching rules for torch.func.vmap, and the math of the
backward and of forward mode as torch ops, which the differentiable entry points share
(_rms_norm.py).

Autograd, as PyTorch's own rms_norm does it: a plain backward runs the fused backward kernel with
the forward's rstd; a backward that will itself be differentiated (create_graph, a forward-mode
level) runs the same math as torch ops, which differentiate to any order in either mode. The
backward ops themselves have no derivative: differentiate rms_norm twice, not its backward op.
"""
import torch

ops = torch.ops.twinop
PREFIX = "twinop.rms_norm: "


def compute_dtype(dtype):
    """The kernels compute float16 and bfloat16 in float32, float64 in float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


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


# ---- the math as torch ops, in the kernels' compute dtype, rounded once ----


def _rows_sum(t):
    """[..., C] -> [C]: the sum over every row."""
    return t.reshape(-1, t.shape[-1]).sum(0)


def rstd_of(x, eps):
    """1 / sqrt(mean(x^2) + eps) per row, in the compute dtype: differentiable in x."""
    xc = x.to(compute_dtype(x.dtype))
    return torch.rsqrt(xc.pow(2).mean(-1) + eps)


def differentiable_backward(dy, x, weight, eps, offset):
    """(dx, dweight) with rstd recomputed from x: torch ops, differentiable in dy, x and weight to
    any order, in reverse and forward mode."""
    compute = compute_dtype(x.dtype)
    xc, dyc = x.to(compute), dy.to(compute)
    rstd = rstd_of(x, eps).unsqueeze(-1)
    x_hat = xc * rstd
    g = dyc * (weight.to(compute) + offset)
    dx = rstd * (g - x_hat * (g * x_hat).mean(-1, keepdim=True))
    return dx.to(x.dtype), _rows_sum(dyc * x_hat).to(weight.dtype)


def rstd_gradient(drstd, x, rstd):
    """The gradient at x of a gradient drstd arriving at rstd: d rstd / dx = -rstd^3 x / C."""
    xc = x.to(rstd.dtype)
    return (-(drstd * rstd.pow(3)).unsqueeze(-1) * xc / x.shape[-1]).to(x.dtype)


def gradients(dy, ds, drstd, x, weight, rstd, eps, offset):
    """(dx, dweight) of rms_norm at x (add_rms_norm: at s, with ds the gradient arriving at s),
    given the gradients arriving at its outputs (None where none arrives)."""
    if dy is None:
        dx, dweight = torch.zeros_like(x), torch.zeros_like(weight)
        if ds is not None:
            dx = dx + ds
    elif torch.is_grad_enabled():  # the backward will be differentiated: torch ops throughout
        dx, dweight = differentiable_backward(dy, x, weight, eps, offset)
        if ds is not None:
            dx = dx + ds
    elif ds is not None:
        dx, dweight = ops.add_rms_norm_backward(dy, ds, x, rstd, weight, offset)
    else:
        dx, dweight = ops.rms_norm_backward(dy, x, rstd, weight, offset)
    if drstd is not None:  # only a caller of the raw ops sees rstd
        rstd = rstd_of(x, eps) if torch.is_grad_enabled() else rstd
        dx = dx + rstd_gradient(drstd, x, rstd)
    return dx, dweight


def tangent(x, t_x, weight, t_weight, eps, offset):
    """The tangent of y = rms_norm(x, weight) given the tangents of x and weight (None where none):
    t_y = (rstd t_x - rstd^3 x mean(x t_x)) (weight + offset) + rstd x t_weight, as torch ops."""
    compute = compute_dtype(x.dtype)
    xc = x.to(compute)
    rstd = rstd_of(x, eps).unsqueeze(-1)
    t_y = torch.zeros_like(xc)
    if t_x is not None:
        tc = t_x.to(compute)
        t_y = (rstd * tc - rstd.pow(3) * xc * (xc * tc).mean(-1, keepdim=True)) * (weight.to(compute) + offset)
    if t_weight is not None:
        t_y = t_y + xc * rstd * t_weight.to(compute)
    return t_y.to(x.dtype)


# ---- autograd of the raw ops ----


def _rms_norm_setup_context(ctx, inputs, output):
    x, weight, eps, offset = inputs
    ctx.save_for_backward(x, weight, output[1])
    ctx.eps, ctx.offset = eps, offset
    ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None, not zeros


def _rms_norm_backward(ctx, dy, drstd):
    x, weight, rstd = ctx.saved_tensors
    return (*gradients(dy, None, drstd, x, weight, rstd, ctx.eps, ctx.offset), None, None)


def _add_rms_norm_setup_context(ctx, inputs, output):
    _, _, weight, eps, offset = inputs
    _, s, rstd = output
    ctx.save_for_backward(s, weight, rstd)
    ctx.eps, ctx.offset = eps, offset
    ctx.set_materialize_grads(False)


def _add_rms_norm_backward(ctx, dy, ds, drstd):
    s, weight, rstd = ctx.saved_tensors
    dx, dweight = gradients(dy, ds, drstd, s, weight, rstd, ctx.eps, ctx.offset)
    return dx, dx, dweight, None, None  # d_residual = dx: s = x + residual


NOT_DIFFERENTIABLE = ("twinop.rms_norm: the backward ops twinop::rms_norm_backward and add_rms_norm_backward have no "
                      "derivative; differentiate rms_norm itself again (its backward is then differentiable)")


def _refuse(ctx, *grads):
    raise NotImplementedError(NOT_DIFFERENTIABLE)


torch.library.register_autograd("twinop::rms_norm", _rms_norm_backward, setup_context=_rms_norm_setup_context)
torch.library.register_autograd("twinop::add_rms_norm", _add_rms_norm_backward,
                                setup_context=_add_rms_norm_setup_context)
for _name in ("twinop::rms_norm_backward", "twinop::add_rms_norm_backward"):
    torch.library.register_autograd(_name, _refuse, setup_context=lambda ctx, inputs, output: None)


# ---- batching rules: one call per vmap, never a loop over examples ----
#
# A vmapped x of shape [B, ..., C] is a bigger x. A weight batched per example is applied outside
# the kernel: the op runs in the compute dtype with weight 1 and offset 0, and y is scaled by each
# example's weight + offset, in the compute dtype, then rounded once: the kernel's own arithmetic.
# dweight is a sum per example: each example's rows of dy * x_hat, in the compute dtype.


def _batch_first(t, dim, batch_size):
    return t.movedim(dim, 0) if dim is not None else t.expand(batch_size, *t.shape)


def _per_example_weight(weight, dim, like, offset):
    """weight + offset per example, [B, 1..., C] to broadcast against a batch-first `like`."""
    w = _batch_first(weight, dim, like.shape[0]).to(compute_dtype(like.dtype)) + offset
    return w.reshape(w.shape[0], *([1] * (like.dim() - 2)), w.shape[-1])


def _sum_per_example(t):
    return t.sum(dim=tuple(range(1, t.dim() - 1))) if t.dim() > 2 else t


def _one_example(t, dim):
    """An empty tensor with one example's rank, last size and dtype, for the op's argument checks."""
    shape = [n for k, n in enumerate(t.shape) if k != dim]
    return torch.empty([0] * (len(shape) - 1) + shape[-1:], dtype=t.dtype)


def _weight_example(weight, dim):
    return torch.empty([n for k, n in enumerate(weight.shape) if k != dim], dtype=weight.dtype)


def _rstd_example(rstd, one_x):
    return torch.empty(one_x.shape[:-1], dtype=rstd.dtype)


def _forward_batched(info, x, x_dim, weight, weight_dim, eps, offset):
    """(y, rstd) batch-first."""
    x = _batch_first(x, x_dim, info.batch_size)
    if weight_dim is None:
        return ops.rms_norm(x, weight, eps, offset)
    xc = x.to(compute_dtype(x.dtype))
    x_hat, rstd = ops.rms_norm(xc, xc.new_ones(xc.shape[-1]), eps, 0.0)
    return (x_hat * _per_example_weight(weight, weight_dim, xc, offset)).to(x.dtype), rstd


@torch.library.register_vmap("twinop::rms_norm")
def _rms_norm_vmap(info, in_dims, x, weight, eps, offset):
    x_dim, weight_dim, _, _ = in_dims
    ops.rms_norm(_one_example(x, x_dim), _weight_example(weight, weight_dim), eps, offset)
    return _forward_batched(info, x, x_dim, weight, weight_dim, eps, offset), (0, 0)


@torch.library.register_vmap("twinop::add_rms_norm")
def _add_rms_norm_vmap(info, in_dims, x, residual, weight, eps, offset):
    x_dim, residual_dim, weight_dim, _, _ = in_dims
    ops.add_rms_norm(_one_example(x, x_dim), _one_example(residual, residual_dim), _weight_example(weight, weight_dim),
                     eps, offset)
    x, residual = _batch_first(x, x_dim, info.batch_size), _batch_first(residual, residual_dim, info.batch_size)
    if weight_dim is None:
        return ops.add_rms_norm(x, residual, weight, eps, offset), (0, 0, 0)
    s = (x.to(compute_dtype(x.dtype)) + residual.to(compute_dtype(x.dtype))).to(x.dtype)  # rounded, as the kernel
    y, rstd = _forward_batched(info, s, 0, weight, weight_dim, eps, offset)
    return (y, s, rstd), (0, 0, 0)


def _backward_batched(info, dy, dy_dim, ds, ds_dim, x, x_dim, rstd, rstd_dim, weight, weight_dim, offset):
    batch = info.batch_size
    dy, x, rstd = _batch_first(dy, dy_dim, batch), _batch_first(x, x_dim, batch), _batch_first(rstd, rstd_dim, batch)
    compute = compute_dtype(x.dtype)
    xc, dyc = x.to(compute), dy.to(compute)
    w = _per_example_weight(weight, weight_dim, xc, offset)
    # the kernel's g = dy * (weight + offset), formed here per example; the op then runs with weight 1
    dx, _ = ops.rms_norm_backward(dyc * w, xc, rstd, xc.new_ones(xc.shape[-1]), 0.0)
    if ds is not None:
        dx = dx + _batch_first(ds, ds_dim, batch).to(compute)
    dweight = _sum_per_example(dyc * (xc * rstd.unsqueeze(-1)))
    return dx.to(x.dtype), dweight.to(weight.dtype)


@torch.library.register_vmap("twinop::rms_norm_backward")
def _rms_norm_backward_vmap(info, in_dims, dy, x, rstd, weight, offset):
    dy_dim, x_dim, rstd_dim, weight_dim, _ = in_dims
    one_x = _one_example(x, x_dim)
    ops.rms_norm_backward(_one_example(dy, dy_dim), one_x, _rstd_example(rstd, one_x), _weight_example(weight, weight_dim),
                          offset)
    return _backward_batched(info, dy, dy_dim, None, None, x, x_dim, rstd, rstd_dim, weight, weight_dim, offset), (0, 0)


@torch.library.register_vmap("twinop::add_rms_norm_backward")
def _add_rms_norm_backward_vmap(info, in_dims, dy, ds, s, rstd, weight, offset):
    dy_dim, ds_dim, s_dim, rstd_dim, weight_dim, _ = in_dims
    one_s = _one_example(s, s_dim)
    ops.add_rms_norm_backward(_one_example(dy, dy_dim), _one_example(ds, ds_dim), one_s, _rstd_example(rstd, one_s),
                              _weight_example(weight, weight_dim), offset)
    return _backward_batched(info, dy, dy_dim, ds, ds_dim, s, s_dim, rstd, rstd_dim, weight, weight_dim, offset), (0, 0)
