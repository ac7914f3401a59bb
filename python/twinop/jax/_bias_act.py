"""bias_act: the differentiable entry point."""
import jax.numpy as jnp

from . import _gradient


def bias_act(x, bias, act="gelu"):
    """y = act(x + bias), bias of shape (x.shape[-1],) and of x's dtype; differentiable in x and
    bias to second order in reverse mode (jax.grad, jax.vjp), under jax.jit and jax.vmap."""
    return _gradient.bias_act(jnp.asarray(x), jnp.asarray(bias), act)
