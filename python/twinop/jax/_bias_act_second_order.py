"""Second-order derivatives of bias_act's primitives: the JVPs of the tangent and of the backward
(forward over forward, forward over reverse) are the backward_tangent primitive, whose transpose
(reverse over reverse, reverse over forward) is the double-backward kernel. A third derivative
needs act''', which no kernel computes: it raises instead of being silently wrong."""
from jax.interpreters import ad

from ._bias_act_ops import backward_p, backward_tangent_p, bind, double_backward_p, tangent_p
from ._primitive import instantiate, is_zero, zero_like
from ._sharding import summed_like

THIRD_ORDER_ERROR = ("twinop.bias_act: third-order derivatives are not supported "
                     "(the double backward, twinop_bias_act_double_backward, has no derivative)")


def _tangent_jvp(primals, tangents, *, act):
    """t_y = act'(v) t_v with t_v = t_x + t_bias: its tangent is act'(v) s_v + act''(v) t_v u_v,
    backward_tangent's dx with dy = t_v (u: the tangents of x and bias, s: those of t_x, t_bias)."""
    x, bias, t_x, t_bias = primals
    t_y = bind(tangent_p, *primals, act=act)
    u_x, u_bias, s_x, s_bias = tangents
    if is_zero(u_x) and is_zero(u_bias):
        return t_y, (zero_like(t_y) if is_zero(s_x) and is_zero(s_bias)
                     else bind(tangent_p, x, bias, *instantiate([s_x, s_bias]), act=act))
    s_x, s_bias, u_x, u_bias = instantiate([s_x, s_bias, u_x, u_bias])
    return t_y, bind(backward_tangent_p, s_x + s_bias, u_x, u_bias, t_x + t_bias, x, bias, act=act)[0]


def _backward_jvp(primals, tangents, *, act):
    dy, x, bias = primals
    out = bind(backward_p, *primals, act=act)
    s_dy, u_x, u_bias = tangents
    if is_zero(u_x) and is_zero(u_bias):
        return out, ([zero_like(o) for o in out] if is_zero(s_dy)
                     else bind(backward_p, *instantiate([s_dy]), x, bias, act=act))
    return out, bind(backward_tangent_p, *instantiate(tangents), dy, x, bias, act=act)


def _backward_tangent_jvp(primals, tangents, *, act):
    """Linear in t_dy, t_x and t_bias; a tangent of dy, x or bias is a third derivative."""
    out = bind(backward_tangent_p, *primals, act=act)
    if not all(map(is_zero, tangents[3:])):
        raise NotImplementedError(THIRD_ORDER_ERROR)
    if all(map(is_zero, tangents[:3])):
        return out, [zero_like(o) for o in out]
    return out, bind(backward_tangent_p, *instantiate(tangents[:3]), *primals[3:], act=act)


def _backward_tangent_transpose(cts, t_dy, t_x, t_bias, dy, x, bias, *, act):
    grads = bind(double_backward_p, *instantiate(cts), dy, x, bias, act=act)
    return (*(summed_like(g, t) if ad.is_undefined_primal(t) else None
              for g, t in zip(grads, (t_dy, t_x, t_bias))), None, None, None)


def _double_backward_jvp(primals, tangents, *, act):
    raise NotImplementedError(THIRD_ORDER_ERROR)


ad.primitive_jvps[tangent_p] = _tangent_jvp
ad.primitive_jvps[backward_p] = _backward_jvp
ad.primitive_jvps[backward_tangent_p] = _backward_tangent_jvp
ad.primitive_transposes[backward_tangent_p] = _backward_tangent_transpose
ad.primitive_jvps[double_backward_p] = _double_backward_jvp
