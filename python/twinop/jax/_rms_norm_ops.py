"""RMSNorm's six primitives and their derivative rules, as bias_act's (_bias_act_ops.py): each
forward's tangent is a primitive linear in the tangents, whose transpose (what jax.grad runs) is the
fused backward kernel with the forward's rstd; each backward's transpose is that tangent again.

  rms_norm(x, weight)                         (y, rstd)
  add_rms_norm(x, residual, weight)           (y, s, rstd), s = x + residual
  tangent(x, rstd, weight, t_x, t_weight)     y's tangent (_rms_norm_math.tangent)
  add_tangent(s, rstd, weight, t_x, t_residual, t_weight)
                                              (y, s)'s tangents
  backward(dy, x, rstd, weight)               (dx, dweight), the backward kernel: linear in dy
  add_backward(dy, ds, s, rstd, weight)       (dx, dweight) at s, dx including ds: linear in dy, ds

Second order is not a kernel here: the JVPs of the tangents and backwards in x (or s) and weight
are _rms_norm_math's formulas, jax.numpy that JAX differentiates further. rstd is the forward's, of
that x: the formulas recompute it from x, so its own tangent (given by the forwards' JVPs) is
already in theirs.
"""
import functools

import jax
from jax.interpreters import ad

from . import _rms_norm_ffi, _rms_norm_math as math
from ._auto_partitioning import auto_partitioned
from ._primitive import define, instantiate, is_zero, like, param_grad_like, row_stat_like, zero_like
from ._sharding import summed_like, vary_alike


@functools.cache
def _ffi_call(op, **attrs):
    return auto_partitioned(op, **attrs)


def _rms_norm(x, weight, *, eps, offset):
    return _ffi_call(_rms_norm_ffi.rms_norm, eps=eps, offset=offset)(x, weight)


def _add_rms_norm(x, residual, weight, *, eps, offset):
    return _ffi_call(_rms_norm_ffi.add_rms_norm, eps=eps, offset=offset)(x, residual, weight)


def _tangent(x, rstd, weight, t_x, t_weight, *, eps, offset):
    return math.tangent(x, weight, t_x, t_weight, eps=eps, offset=offset, rstd=rstd)


def _add_tangent(s, rstd, weight, t_x, t_residual, t_weight, *, eps, offset):
    return math.add_tangent(s, weight, t_x, t_residual, t_weight, eps=eps, offset=offset, rstd=rstd)


def _backward(dy, x, rstd, weight, *, eps, offset):
    return _ffi_call(_rms_norm_ffi.rms_norm_backward, offset=offset)(dy, x, rstd, weight)


def _add_backward(dy, ds, s, rstd, weight, *, eps, offset):
    return _ffi_call(_rms_norm_ffi.add_rms_norm_backward, offset=offset)(dy, ds, s, rstd, weight)


def _forward_types(x, *avals, eps, offset):
    return like(x), row_stat_like(x, math.compute_dtype(x.dtype))


def _add_forward_types(x, *avals, eps, offset):
    return like(x), like(x), row_stat_like(x, math.compute_dtype(x.dtype))


def _tangent_types(x, *avals, eps, offset):
    return like(x)


def _add_tangent_types(s, *avals, eps, offset):
    return like(s), like(s)


def _backward_types(*avals, eps, offset):
    x, weight = avals[-3], avals[-1]
    return like(x), param_grad_like(weight, x)


rms_norm_p = define("twinop_rms_norm", _rms_norm, _forward_types, multiple_results=True)
add_rms_norm_p = define("twinop_add_rms_norm", _add_rms_norm, _add_forward_types, multiple_results=True)
tangent_p = define("twinop_rms_norm_tangent", _tangent, _tangent_types, multiple_results=False)
add_tangent_p = define("twinop_add_rms_norm_tangent", _add_tangent, _add_tangent_types, multiple_results=True)
backward_p = define("twinop_rms_norm_backward", _backward, _backward_types, multiple_results=True)
add_backward_p = define("twinop_add_rms_norm_backward", _add_backward, _backward_types, multiple_results=True)


def bind(primitive, *arrays, eps, offset):
    """primitive on arrays cast to vary alike over shard_map's manual axes, as JAX's own ops do."""
    out = primitive.bind(*vary_alike(*arrays), eps=eps, offset=offset)
    return tuple(out) if primitive.multiple_results else out


# ---- the forwards' tangents, and their transposes: the fused backward kernels ----


def _rms_norm_jvp(primals, tangents, *, eps, offset):
    x, weight = primals
    y, rstd = bind(rms_norm_p, x, weight, eps=eps, offset=offset)
    if all(map(is_zero, tangents)):
        return (y, rstd), (zero_like(y), zero_like(rstd))
    t_x, t_weight = instantiate(tangents)
    return (y, rstd), (bind(tangent_p, x, rstd, weight, t_x, t_weight, eps=eps, offset=offset),
                       math.rstd_tangent(x, rstd, t_x))


def _add_rms_norm_jvp(primals, tangents, *, eps, offset):
    y, s, rstd = bind(add_rms_norm_p, *primals, eps=eps, offset=offset)
    if all(map(is_zero, tangents)):
        return (y, s, rstd), (zero_like(y), zero_like(s), zero_like(rstd))
    t_y, t_s = bind(add_tangent_p, s, rstd, primals[2], *instantiate(tangents), eps=eps, offset=offset)
    return (y, s, rstd), (t_y, t_s, math.rstd_tangent(s, rstd, t_s))


# twinop-feature: gradient
def _cotangent(grad, primal):
    return summed_like(grad, primal) if ad.is_undefined_primal(primal) else None


def _tangent_transpose(ct, x, rstd, weight, t_x, t_weight, *, eps, offset):
    dx, dweight = bind(backward_p, *instantiate([ct]), x, rstd, weight, eps=eps, offset=offset)
    return None, None, None, _cotangent(dx, t_x), _cotangent(dweight, t_weight)


def _add_tangent_transpose(cts, s, rstd, weight, t_x, t_residual, t_weight, *, eps, offset):
    dx, dweight = bind(add_backward_p, *instantiate(cts), s, rstd, weight, eps=eps, offset=offset)
    return None, None, None, _cotangent(dx, t_x), _cotangent(dx, t_residual), _cotangent(dweight, t_weight)


# twinop-feature: second-order
def _backward_transpose(cts, dy, x, rstd, weight, *, eps, offset):
    d_dy = bind(tangent_p, x, rstd, weight, *instantiate(cts), eps=eps, offset=offset)
    return _cotangent(d_dy, dy), None, None, None


def _add_backward_transpose(cts, dy, ds, s, rstd, weight, *, eps, offset):
    c_x, c_weight = instantiate(cts)
    d_dy = bind(tangent_p, s, rstd, weight, c_x, c_weight, eps=eps, offset=offset)
    return _cotangent(d_dy, dy), _cotangent(c_x, ds), None, None, None  # dx = ... + ds


# ---- the linear primitives' JVPs: themselves in their linear inputs, the formulas otherwise ----
# (rstd's tangent, `_`, is in the formulas' through x: they recompute rstd from x)


def _applied(out, tangents, apply):
    """The JVP of a primitive linear in inputs whose tangents are `tangents`: apply(tangents)."""
    if all(map(is_zero, tangents)):
        return [zero_like(o) for o in out] if isinstance(out, tuple) else zero_like(out)
    return apply(instantiate(tangents))


def _formula_jvp(formula, primals, tangents, *, eps, offset):
    return jax.jvp(lambda *a: formula(*a, eps=eps, offset=offset), primals, tuple(instantiate(tangents)))[1]


def _tangent_jvp(primals, tangents, *, eps, offset):
    x, rstd, weight, t_x, t_weight = primals
    u_x, _, u_weight, s_x, s_weight = tangents
    out = bind(tangent_p, *primals, eps=eps, offset=offset)
    if is_zero(u_x) and is_zero(u_weight):
        return out, _applied(out, [s_x, s_weight], lambda s: bind(tangent_p, x, rstd, weight, *s, eps=eps,
                                                                   offset=offset))
    return out, _formula_jvp(math.tangent, (x, weight, t_x, t_weight), (u_x, u_weight, s_x, s_weight), eps=eps,
                             offset=offset)


def _add_tangent_jvp(primals, tangents, *, eps, offset):
    s, rstd, weight, t_x, t_residual, t_weight = primals
    u_s, _, u_weight, *linear = tangents
    out = bind(add_tangent_p, *primals, eps=eps, offset=offset)
    if is_zero(u_s) and is_zero(u_weight):
        return out, _applied(out, linear, lambda t: bind(add_tangent_p, s, rstd, weight, *t, eps=eps, offset=offset))
    return out, _formula_jvp(math.add_tangent, (s, weight, t_x, t_residual, t_weight), (u_s, u_weight, *linear),
                             eps=eps, offset=offset)


def _backward_jvp(primals, tangents, *, eps, offset):
    dy, x, rstd, weight = primals
    s_dy, u_x, _, u_weight = tangents
    out = bind(backward_p, *primals, eps=eps, offset=offset)
    if is_zero(u_x) and is_zero(u_weight):
        return out, _applied(out, [s_dy], lambda t: bind(backward_p, *t, x, rstd, weight, eps=eps, offset=offset))
    return out, _formula_jvp(math.backward, (dy, x, weight), (s_dy, u_x, u_weight), eps=eps, offset=offset)


def _add_backward_jvp(primals, tangents, *, eps, offset):
    dy, ds, s, rstd, weight = primals
    s_dy, s_ds, u_s, _, u_weight = tangents
    out = bind(add_backward_p, *primals, eps=eps, offset=offset)
    if is_zero(u_s) and is_zero(u_weight):
        return out, _applied(out, [s_dy, s_ds], lambda t: bind(add_backward_p, *t, s, rstd, weight, eps=eps,
                                                                offset=offset))
    return out, _formula_jvp(math.add_backward, (dy, ds, s, weight), (s_dy, s_ds, u_s, u_weight), eps=eps,
                             offset=offset)


# twinop-feature: forward-mode
ad.primitive_jvps[rms_norm_p] = _rms_norm_jvp
ad.primitive_jvps[add_rms_norm_p] = _add_rms_norm_jvp
# twinop-feature: gradient
ad.primitive_transposes[tangent_p] = _tangent_transpose
ad.primitive_transposes[add_tangent_p] = _add_tangent_transpose
# twinop-feature: second-order
ad.primitive_transposes[backward_p] = _backward_transpose
ad.primitive_transposes[add_backward_p] = _add_backward_transpose
for _primitive, _rule in ((tangent_p, _tangent_jvp), (add_tangent_p, _add_tangent_jvp), (backward_p, _backward_jvp),
                          (add_backward_p, _add_backward_jvp)):
    ad.primitive_jvps[_primitive] = _rule
