"""First-order derivatives of bias_act's primitives: forward's tangent is the linear tangent
primitive, whose transpose (what jax.grad and jax.vjp run) is the fused backward kernel, dx and
dbias in one pass; backward's transpose is the tangent again. (Second order:
_bias_act_second_order.py.)"""
from jax.interpreters import ad

from ._bias_act_ops import backward_p, bind, forward_p, tangent_p
from ._primitive import instantiate, is_zero, zero_like
from ._sharding import summed_like


def _forward_jvp(primals, tangents, *, act):
    x, bias = primals
    y = bind(forward_p, x, bias, act=act)
    if all(map(is_zero, tangents)):
        return y, zero_like(y)
    return y, bind(tangent_p, x, bias, *instantiate(tangents), act=act)


def _tangent_transpose(ct, x, bias, t_x, t_bias, *, act):
    dx, dbias = bind(backward_p, *instantiate([ct]), x, bias, act=act)
    return (None, None, summed_like(dx, t_x) if ad.is_undefined_primal(t_x) else None,
            summed_like(dbias, t_bias) if ad.is_undefined_primal(t_bias) else None)


def _backward_transpose(cts, dy, x, bias, *, act):
    return summed_like(bind(tangent_p, x, bias, *instantiate(cts), act=act), dy), None, None


ad.primitive_jvps[forward_p] = _forward_jvp
ad.primitive_transposes[tangent_p] = _tangent_transpose
ad.primitive_transposes[backward_p] = _backward_transpose
