"""The derivative of the forward op (jax.custom_vjp): the backward op, itself differentiable
(_second_order.py). Reverse mode only: jax.jvp of a custom_vjp function raises JAX's TypeError,
and a custom_jvp rule here could not be transposed into the fused backward kernel."""
import functools

import jax

from ._second_order import bias_act_backward
from ._sharding import summed_like
from ._vmap import batched


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def bias_act(x, bias, act):
    return batched(act).forward(x, bias)


def _fwd(x, bias, act):
    return bias_act(x, bias, act), (x, bias)  # the backward recomputes act'(x + bias) from these alone


def _bwd(act, saved, dy):
    x, bias = saved
    dx, dbias = bias_act_backward(dy, x, bias, act)
    return summed_like(dx, x), summed_like(dbias, bias)


bias_act.defvjp(_fwd, _bwd)
