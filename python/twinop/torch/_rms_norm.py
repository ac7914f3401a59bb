"""rms_norm and add_rms_norm: the differentiable entry points, through autograd.Functions or the
ops themselves, as bias_act (_bias_act_function.py says why there are two routes).

Two Functions per entry point, each differentiated by the next, in both modes:
  RmsNorm / AddRmsNorm:  y (and s) from the forward op; rstd kept for the backward.
                         backward: the backward op, or RmsNormBackward where the backward may
                         itself be differentiated (create_graph, a forward-mode level);
                         jvp: the tangent of y as torch ops.
  RmsNormBackward:       (dx, dweight) from the backward op (the same kernel, the same bits).
                         backward and jvp: _rms_norm_ops.backward_vjp / backward_jvp, as torch
                         ops, with rstd recomputed from x so that every order is exact.
Their forwards call the ops, so vmap (generate_vmap_rule) reaches the ops' batching rules.
"""
import functools
import math

import torch
from torch import nn

from ._checks import c10_name, check_same_as, check_x, shape_text
from ._dual_check import in_dual_level
from ._no_derivative import NoDerivative
from ._rms_norm_ops import differentiable_backward, tangent

ops = torch.ops.twinop


# twinop-feature: second-order
THIRD_ORDER_ERROR = ("twinop.rms_norm: third-order derivatives are not supported through twinop.torch.rms_norm "
                     "(torch.func would not differentiate its Functions' rules again); torch.autograd.grad of the raw "
                     "op torch.ops.twinop.rms_norm serves any order")


# twinop-feature: gradient
def _backward(dy, ds, x, weight, rstd, eps, offset):
    """(dx, dweight): RmsNormBackward where the backward may be differentiated (create_graph, a
    forward-mode level), else the op alone: the same kernel, without Function.apply's cost."""
    if dy is None:  # nothing arrived at y (an add_rms_norm whose s alone is used)
        return (torch.zeros_like(x) if ds is None else ds), torch.zeros_like(weight)
    if torch.is_grad_enabled() or in_dual_level():
        return RmsNormBackward.apply(dy, ds, x, weight, rstd, eps, offset)
    if ds is None:
        return ops.rms_norm_backward(dy, x, rstd, weight, offset)
    return ops.add_rms_norm_backward(dy, ds, x, rstd, weight, offset)


# twinop-feature: end
class RmsNorm(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, eps, offset):
        return ops.rms_norm(x, weight, eps, offset)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, eps, offset = inputs
        ctx.mark_non_differentiable(output[1])  # rstd, kept for the backward, not returned to the user
        # The same tensors for both: torch.func's vmap of a Function keeps one record of them.
        ctx.save_for_backward(x, weight, output[1])
        ctx.save_for_forward(x, weight, output[1])
        ctx.eps, ctx.offset = eps, offset
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, dy, _):
        x, weight, rstd = ctx.saved_tensors
        return (*_backward(dy, None, x, weight, rstd, ctx.eps, ctx.offset), None, None)

    @staticmethod
    def jvp(ctx, t_x, t_weight, _eps, _offset):
        x, weight, _ = ctx.saved_tensors
        return RmsNormTangent.apply(x, t_x, weight, t_weight, ctx.eps, ctx.offset), None


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
        ctx.save_for_forward(s, weight, rstd)
        ctx.eps, ctx.offset = eps, offset
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, dy, ds, _):
        s, weight, rstd = ctx.saved_tensors
        dx, dweight = _backward(dy, ds, s, weight, rstd, ctx.eps, ctx.offset)
        return dx, dx, dweight, None, None  # s = x + residual: both get dx

    @staticmethod
    def jvp(ctx, t_x, t_residual, t_weight, _eps, _offset):
        s, weight, _ = ctx.saved_tensors
        t_s = t_x if t_residual is None else (t_residual if t_x is None else t_x + t_residual)
        return RmsNormTangent.apply(s, t_s, weight, t_weight, ctx.eps, ctx.offset), t_s, None


# twinop-feature: second-order
def _or_zeros(tensors, likes):
    """Each tensor, or zeros like its `like` where it is None (an unused output's gradient)."""
    return tuple(torch.zeros_like(like) if t is None else t for t, like in zip(tensors, likes))


class RmsNormBackward(torch.autograd.Function):
    """(dx, dweight) from the backward op; its derivatives (second order) from the formula as torch
    ops, through SecondOrder."""
    generate_vmap_rule = True

    @staticmethod
    def forward(dy, ds, x, weight, rstd, eps, offset):
        if ds is None:
            return ops.rms_norm_backward(dy, x, rstd, weight, offset)
        return ops.add_rms_norm_backward(dy, ds, x, rstd, weight, offset)

    @staticmethod
    def setup_context(ctx, inputs, output):
        dy, ds, x, weight, _, eps, offset = inputs
        ctx.save_for_backward(dy, x, weight)
        ctx.save_for_forward(dy, x, weight)
        ctx.has_ds, ctx.eps, ctx.offset = ds is not None, eps, offset
        ctx.set_materialize_grads(False)  # _or_zeros makes them like the saved tensors (a DTensor's as DTensors)

    @staticmethod
    def backward(ctx, a, b):
        dy, x, weight = ctx.saved_tensors
        formula = functools.partial(differentiable_backward, eps=ctx.eps, offset=ctx.offset)
        d_dy, d_x, d_weight = SecondOrder.apply("vjp", formula, 3, dy, x, weight, *_or_zeros((a, b), (x, weight)))
        d_ds = (a if a is not None else torch.zeros_like(x)) if ctx.has_ds else None  # dx = ... + ds
        return d_dy, d_ds, d_x, d_weight, None, None, None

    @staticmethod
    def jvp(ctx, t_dy, t_ds, t_x, t_weight, _rstd, _eps, _offset):
        dy, x, weight = ctx.saved_tensors
        formula = functools.partial(differentiable_backward, eps=ctx.eps, offset=ctx.offset)
        t_dx, t_dweight = SecondOrder.apply("jvp", formula, 3, dy, x, weight,
                                            *_or_zeros((t_dy, t_x, t_weight), (dy, x, weight)))
        return (t_dx if t_ds is None else t_dx + t_ds), t_dweight


# twinop-feature: end
class RmsNormTangent(torch.autograd.Function):
    """The tangent of y (RmsNorm's jvp) as torch ops; its derivatives (second order in forward
    mode) through SecondOrder."""
    generate_vmap_rule = True

    @staticmethod
    def forward(x, t_x, weight, t_weight, eps, offset):
        return tangent(x, t_x, weight, t_weight, eps, offset)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, t_x, weight, t_weight, eps, offset = inputs
        ctx.save_for_backward(x, t_x, weight, t_weight)  # only inputs may be saved: a None stays None
        ctx.save_for_forward(x, t_x, weight, t_weight)
        ctx.eps, ctx.offset = eps, offset
        ctx.set_materialize_grads(False)

    @staticmethod
    def _primals(ctx):
        x, t_x, weight, t_weight = ctx.saved_tensors
        return _or_zeros((x, t_x, weight, t_weight), (x, x, weight, weight)), (t_x is not None, t_weight is not None)

    @staticmethod
    def backward(ctx, g):
        if g is None:
            return None, None, None, None, None, None
        primals, (has_t_x, has_t_weight) = RmsNormTangent._primals(ctx)
        formula = functools.partial(tangent, eps=ctx.eps, offset=ctx.offset)
        d_x, d_t_x, d_weight, d_t_weight = SecondOrder.apply("vjp", formula, 4, *primals, g)
        return d_x, d_t_x if has_t_x else None, d_weight, d_t_weight if has_t_weight else None, None, None

    @staticmethod
    def jvp(ctx, *tangents):
        primals, _ = RmsNormTangent._primals(ctx)
        formula = functools.partial(tangent, eps=ctx.eps, offset=ctx.offset)
        return SecondOrder.apply("jvp", formula, 4, *primals, *_or_zeros(tangents[:4], primals))


# twinop-feature: second-order
class SecondOrder(NoDerivative):
    """A derivative of a formula of torch ops ("vjp": the gradients of its inputs given those of its
    outputs; "jvp": the tangents of its outputs given its inputs'), computed in forward: where the
    rules of the Functions above are needed, it gives them; its own derivative (third order) raises
    rather than be silently lost (torch.func does not differentiate a Function's rules again)."""
    MESSAGE = THIRD_ORDER_ERROR

    @staticmethod
    def forward(mode, formula, count, *tensors):
        primals, directions = tensors[:count], tensors[count:]
        if mode == "vjp":
            _, pullback = torch.func.vjp(formula, *primals)
            return pullback(directions[0] if len(directions) == 1 else directions)
        return torch.func.jvp(formula, primals, directions)[1]


# twinop-feature: loader
RMS_NORM = "twinop.rms_norm: "
HALF = (torch.float16, torch.bfloat16)


def _number(value):
    """arg_checks.h's number_string: C's %g."""
    return "%g" % value


def check_rms_norm_args(x, weight, eps, offset, residual=None):
    """TypeError (dtype) or ValueError (shape, eps, offset) for what twinop::rms_norm (and
    add_rms_norm, given a residual) refuses."""
    check_x(RMS_NORM, x)
    if weight.dim() != 1:
        raise ValueError(f"{RMS_NORM}weight must be 1-D; got shape {shape_text(weight.shape)}")
    if weight.shape[0] != x.shape[-1]:
        raise ValueError(f"{RMS_NORM}weight must have x.shape[-1] = {x.shape[-1]} elements; got {weight.shape[0]}")
    if weight.dtype != x.dtype and not (x.dtype in HALF and weight.dtype == torch.float32):
        allowed = " or float32" if x.dtype in HALF else ""
        raise TypeError(f"{RMS_NORM}weight must have the dtype of x ({c10_name(x.dtype)}){allowed}; "
                        f"got {c10_name(weight.dtype)}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{RMS_NORM}eps must be finite and >= 0; got {_number(eps)}")
    if not math.isfinite(offset):
        raise ValueError(f"{RMS_NORM}offset must be finite; got {_number(offset)}")
    if residual is not None:
        check_same_as(RMS_NORM, residual, "residual", x, "x")


# twinop-feature: mixed-precision
def _autocast_inputs(*tensors):
    """The tensors as the ops' autocast kernel casts them on CUDA (float32, as F.rms_norm there;
    on the CPU autocast leaves the op alone): cast before the Function, so what it saves has the
    dtype it computed in."""
    if not (tensors[0].device.type == "cuda" and torch.is_autocast_enabled("cuda")):
        return tensors
    return tuple(t.float() if t.device.type == "cuda" and t.dtype in (torch.float16, torch.bfloat16) else t
                 for t in tensors)


# twinop-feature: loader
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
    # twinop-feature: compiled
    if torch.compiler.is_compiling():  # Dynamo refuses the Functions' custom jvp; the op has autograd
        return ops.rms_norm(x, weight, eps, offset)[0]
    # twinop-feature: loader
    if not _differentiated(x, weight):
        return ops.rms_norm(x, weight, eps, offset)[0]
    return RmsNorm.apply(x, weight, eps, offset)[0]


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, *,
                 offset: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, s): s = x + residual (in x's dtype, as x + residual is), y = rms_norm(s, weight, eps,
    offset=offset), in one pass: the residual add and norm of a pre-norm transformer block."""
    x, residual, weight = _autocast_inputs(x, residual, weight)
    check_rms_norm_args(x, weight, eps, offset, residual=residual)
    # twinop-feature: compiled
    if torch.compiler.is_compiling():
        return ops.add_rms_norm(x, residual, weight, eps, offset)[:2]
    # twinop-feature: loader
    if not _differentiated(x, residual, weight):
        return ops.add_rms_norm(x, residual, weight, eps, offset)[:2]
    return AddRmsNorm.apply(x, residual, weight, eps, offset)[:2]


# twinop-feature: module

class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2 over the last axis) + eps) * (weight + offset), with a learnable weight
    of shape (normalized_shape,): torch.nn.RMSNorm over the last axis, fused in one kernel. Its
    state_dict is nn.RMSNorm's ({"weight": ...}), so either loads the other's.

    The weight starts at ones, as nn.RMSNorm's; with offset=1.0 (Gemma's convention, y scaled by
    1 + weight) start it at zeros: ``nn.init.zeros_(m.weight)``. Under CUDA autocast the module
    computes in float32, as nn.RMSNorm does; on the CPU a float32 weight with bfloat16 or float16
    input runs mixed, in one kernel.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-6, *, offset: float = 0.0, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if len(shape) != 1:
            raise ValueError(f"twinop.torch.RMSNorm normalizes the last axis: normalized_shape must be an int or "
                             f"have one element; got {normalized_shape!r}")
        self.normalized_shape = shape
        self.eps = eps
        self.offset = offset
        self.weight = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps, offset=self.offset)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, offset={self.offset}"
