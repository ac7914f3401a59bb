"""The derivative of the backward op, for second order: the double-backward op, whose own
derivative is an error rather than a silently wrong third derivative."""
import functools

import jax

from ._sharding import summed_like
from ._vmap import batched

THIRD_ORDER_ERROR = ("twinop.bias_act: third-order derivatives are not supported "
                     "(the double backward, twinop_bias_act_double_backward, has no derivative)")


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def bias_act_backward(dy, x, bias, act):
    """(dx, dbias) of bias_act, differentiable in dy, x and bias."""
    return batched(act).backward(dy, x, bias)


def _backward_fwd(dy, x, bias, act):
    return bias_act_backward(dy, x, bias, act), (dy, x, bias)


def _backward_bwd(act, saved, grads):
    g, g_bias = grads  # arriving at dx and dbias
    return tuple(map(summed_like, bias_act_double_backward(g, g_bias, *saved, act), saved))


bias_act_backward.defvjp(_backward_fwd, _backward_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def bias_act_double_backward(g, g_bias, dy, x, bias, act):
    """(d_dy, d_x, d_bias): the gradients of bias_act_backward's inputs."""
    return batched(act).double_backward(g, g_bias, dy, x, bias)


def _double_backward_fwd(g, g_bias, dy, x, bias, act):
    return bias_act_double_backward(g, g_bias, dy, x, bias, act), None


def _double_backward_bwd(act, saved, grads):
    raise NotImplementedError(THIRD_ORDER_ERROR)


bias_act_double_backward.defvjp(_double_backward_fwd, _double_backward_bwd)
