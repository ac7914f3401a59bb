"""bias_act: the differentiable entry point."""
import functools

import jax

from . import _gradient, _sharding


# Jitted, as jax.numpy's functions are: an eager call runs one cached executable instead of
# tracing the custom_vjp and custom_vmap wrappers again (about 1 ms a call); under an outer
# transform the jit is inlined.
@functools.partial(jax.jit, static_argnames="act")
def bias_act(x, bias, act="gelu"):
    """y = act(x + bias), bias of shape (x.shape[-1],) and of x's dtype; differentiable in x and
    bias to second order in reverse mode (jax.grad, jax.vjp), under jax.jit and jax.vmap."""
    return _sharding.partitioned(lambda x, bias: _gradient.bias_act(x, bias, act), x, bias)
