"""rms_norm and add_rms_norm: the differentiable entry points, through an autograd.Function or
the op itself, as bias_act (_bias_act.py, _function.py says why there are two routes).

The Functions' forwards call the ops, so vmap (generate_vmap_rule) reaches the ops' batching rules;
their backward and jvp are _rms_norm_ops.py's: the fused backward kernel where nothing will
differentiate the backward, the math as torch ops where something will (any order, either mode).
"""
import torch

from ._checks import check_rms_norm_args
from ._dual_check import in_dual_level
from ._rms_norm_ops import gradients, tangent

ops = torch.ops.twinop


class RmsNorm(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, eps, offset):
        return ops.rms_norm(x, weight, eps, offset)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, eps, offset = inputs
        ctx.mark_non_differentiable(output[1])  # rstd, kept for the backward
        ctx.save_for_backward(x, weight, output[1])
        ctx.save_for_forward(x, weight)
        ctx.eps, ctx.offset = eps, offset
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, dy, _):
        x, weight, rstd = ctx.saved_tensors
        return (*gradients(dy, None, None, x, weight, rstd, ctx.eps, ctx.offset), None, None)

    @staticmethod
    def jvp(ctx, t_x, t_weight, _eps, _offset):
        x, weight = ctx.saved_tensors
        return tangent(x, t_x, weight, t_weight, ctx.eps, ctx.offset), None


class AddRmsNorm(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, residual, weight, eps, offset):
        return ops.add_rms_norm(x, residual, weight, eps, offset)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, _, weight, eps, offset = inputs
        _, s, rstd = output
        ctx.mark_non_differentiable(rstd)
        ctx.save_for_backward(s, weight, rstd)
        ctx.save_for_forward(s, weight)
        ctx.eps, ctx.offset = eps, offset
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, dy, ds, _):
        s, weight, rstd = ctx.saved_tensors
        dx, dweight = gradients(dy, ds, None, s, weight, rstd, ctx.eps, ctx.offset)
        return dx, dx, dweight, None, None  # s = x + residual: both get dx

    @staticmethod
    def jvp(ctx, t_x, t_residual, t_weight, _eps, _offset):
        s, weight = ctx.saved_tensors
        t_s = t_x if t_residual is None else (t_residual if t_x is None else t_x + t_residual)
        return tangent(s, t_s, weight, t_weight, ctx.eps, ctx.offset), t_s, None


def _autocast_inputs(*tensors):
    """The tensors as the ops' autocast kernel casts them on CUDA (float32, as F.rms_norm there;
    on the CPU autocast leaves the op alone): cast before the Function, so what it saves has the
    dtype it computed in."""
    if not (tensors[0].device.type == "cuda" and torch.is_autocast_enabled("cuda")):
        return tensors
    return tuple(t.float() if t.device.type == "cuda" and t.dtype in (torch.float16, torch.bfloat16) else t
                 for t in tensors)


def _differentiated(*tensors):
    """Whether this call needs the Function: a gradient may be asked for, or a forward-mode level
    is open. Otherwise the op alone gives the same result without Function.apply's cost."""
    return (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)) or in_dual_level()


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, *, offset: float = 0.0) -> torch.Tensor:
    """y = x / sqrt(mean(x^2 over the last axis) + eps) * (weight + offset), computed in float32
    (float64 for float64) and rounded once to x's dtype. weight: shape (x.shape[-1],), x's dtype or
    float32 for float16/bfloat16 x. Differentiable in x and weight to any order, in reverse and
    forward mode, under torch.func transforms, vmap and torch.compile."""
    x, weight = _autocast_inputs(x, weight)
    check_rms_norm_args(x, weight, eps, offset)
    if torch.compiler.is_compiling() or not _differentiated(x, weight):  # the op has its own autograd
        return ops.rms_norm(x, weight, eps, offset)[0]
    return RmsNorm.apply(x, weight, eps, offset)[0]


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, *,
                 offset: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, s): s = x + residual (in x's dtype, as x + residual is), y = rms_norm(s, weight, eps,
    offset=offset), in one pass: the residual add and norm of a pre-norm transformer block."""
    x, residual, weight = _autocast_inputs(x, residual, weight)
    check_rms_norm_args(x, weight, eps, offset, residual=residual)
    if torch.compiler.is_compiling() or not _differentiated(x, residual, weight):
        y, s, _ = ops.add_rms_norm(x, residual, weight, eps, offset)
    else:
        y, s, _ = AddRmsNorm.apply(x, residual, weight, eps, offset)
    return y, s
