"""The gradients of the RMSNorm ops, to any order.

Twinop>RmsNorm / AddRmsNorm: the fused backward op (Twinop>RmsNormGrad / AddRmsNormGrad) with
the forward's rstd, plus the path through rstd where a gradient arrives at that output.
The backward ops: their derivative as TensorFlow ops (_backward_vjp), with rstd an input of its
own, as the backward op takes it; its path to x runs through the forward op's rstd output, whose
gradient is the forward's above. TensorFlow differentiates those ops again, so every order is
exact, and tf.autodiff.ForwardAccumulator, which builds JVPs by differentiating gradients, gets
forward mode and forward-over-reverse from them.

Per row, with C = x.shape[-1], w = weight + offset, g = dy w and D = sum(g x):
  forward   y = rstd x w,  rstd = (mean(x^2) + eps)^(-1/2),  d rstd / dx = -rstd^3 x / C
  backward  dx = rstd g - (rstd^3 D / C) x (+ ds),  dweight = sum over rows of dy x rstd
"""
import numpy as np
import tensorflow as tf

from ._library import ops
from ._tensors import or_zeros, sum_rows


def _row_sum(t):
    return tf.reduce_sum(t, axis=-1, keepdims=True)


def _cols(x, dtype):
    return tf.cast(tf.shape(x)[-1], dtype)


def _rstd_path(d_rstd, x, rstd):
    """The gradient at x of d_rstd arriving at rstd (both x.shape[:-1])."""
    compute = rstd.dtype
    per_row = -(d_rstd * rstd**3) / _cols(x, compute)
    return tf.cast(per_row[..., None] * tf.cast(x, compute), x.dtype)


def _zeros_by_construction(t):
    """Whether t is zeros before it runs: an eager or constant value of zeros, or the Fill of 0 or
    ZerosLike a tape or tf.gradients makes for an output nothing reached."""
    value = tf.get_static_value(t)
    if value is not None:
        return not np.any(value)  # NaN counts as nonzero
    if t.op.type == "ZerosLike":
        return True
    fill = tf.get_static_value(t.op.inputs[1]) if t.op.type == "Fill" else None
    return fill is not None and not np.any(fill)


def _plus_rstd_path(dx, d_rstd, x, rstd):
    """dx plus the gradient reaching x through rstd. Only the raw ops return rstd: for callers of
    twinop.tf.rms_norm the gradient there is zeros by construction, and costs no pass over x."""
    if d_rstd is None or _zeros_by_construction(d_rstd):
        return dx
    return dx + _rstd_path(d_rstd, x, rstd)


@tf.RegisterGradient("Twinop>RmsNorm")
def _rms_norm_grad(op, dy, d_rstd):
    x, weight = op.inputs
    rstd = op.outputs[1]
    dx, dweight = ops.twinop_rms_norm_grad(or_zeros(dy, x), x, rstd, weight, offset=op.get_attr("offset"))
    return _plus_rstd_path(dx, d_rstd, x, rstd), dweight


@tf.RegisterGradient("Twinop>AddRmsNorm")
def _add_rms_norm_grad(op, dy, ds, d_rstd):
    weight = op.inputs[2]
    _, s, rstd = op.outputs
    dx, dweight = ops.twinop_add_rms_norm_grad(or_zeros(dy, s), or_zeros(ds, s), s, rstd, weight,
                                               offset=op.get_attr("offset"))
    dx = _plus_rstd_path(dx, d_rstd, s, rstd)
    # s = x + residual: both get dx, as two tensor objects (tf.identity shares the buffer): TensorFlow's
    # eager tape leaks a tensor a call when a gradient function returns one object for two inputs.
    return dx, tf.identity(dx), dweight


# twinop-feature: second-order
def _backward_vjp(a, b, dy, x, rstd, weight, offset):
    """(d_dy, d_x, d_rstd, d_weight): the gradients of the backward's inputs given a arriving at dx
    and b at dweight, in the compute type (rstd's), each rounded once to its input's dtype."""
    compute = rstd.dtype
    r = rstd[..., None]
    dyc, xc, ac = (tf.cast(t, compute) for t in (dy, x, or_zeros(a, x)))
    w = tf.cast(weight, compute) + offset
    g, cols = dyc * w, _cols(x, compute)
    a_x, g_x = _row_sum(ac * xc), _row_sum(g * xc)
    row_part = r * ac - (r**3 / cols) * a_x * xc  # d dx / d g, applied to a
    d_dy = w * row_part
    d_x = -(r**3 / cols) * (a_x * g + g_x * ac)
    d_rstd = _row_sum(ac * g) - (3 * r**2 / cols) * g_x * a_x
    d_weight = sum_rows(dyc * row_part)
    if b is not None:
        bc = tf.cast(b, compute)
        d_dy, d_x = d_dy + r * bc * xc, d_x + r * bc * dyc
        d_rstd = d_rstd + _row_sum(bc * dyc * xc)
    return (tf.cast(d_dy, dy.dtype), tf.cast(d_x, x.dtype), d_rstd[..., 0], tf.cast(d_weight, weight.dtype))


@tf.RegisterGradient("Twinop>RmsNormGrad")
def _rms_norm_grad_grad(op, a, b):
    dy, x, rstd, weight = op.inputs
    return _backward_vjp(a, b, dy, x, rstd, weight, op.get_attr("offset"))


@tf.RegisterGradient("Twinop>AddRmsNormGrad")
def _add_rms_norm_grad_grad(op, a, b):
    dy, ds, s, rstd, weight = op.inputs
    d_dy, d_s, d_rstd, d_weight = _backward_vjp(a, b, dy, s, rstd, weight, op.get_attr("offset"))
    return d_dy, or_zeros(a, ds), d_s, d_rstd, d_weight  # dx = ... + ds
