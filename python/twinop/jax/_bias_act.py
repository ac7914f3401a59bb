"""bias_act: the differentiable entry point."""
import functools

import jax

from .. import _layouts
from . import _bias_act_gradient, _bias_act_second_order, _bias_act_vmap, _sharding  # noqa: F401  (the rules)
from ._bias_act_ops import bind, forward_p
from ._library import check_args


# Jitted, as jax.numpy's functions are: an eager call runs one cached executable instead of
# binding the primitives one by one; under an outer transform the jit is inlined.
@functools.partial(jax.jit, static_argnames="act")
def bias_act(x, bias, act="gelu"):
    """y = act(x + bias), bias of shape (x.shape[-1],) and of x's dtype; differentiable in x and
    bias to second order in reverse and forward mode (jax.grad, jax.vjp, jax.jvp, jax.jacfwd,
    jax.hessian), under jax.jit and jax.vmap."""
    check_args(act, x, bias)  # per example under vmap, before the batch is folded into rows
    y, = _sharding.partitioned(lambda x, bias: (bind(forward_p, x, bias, act=act),), _layouts.OPS["bias_act"],
                               x, bias)
    return y
