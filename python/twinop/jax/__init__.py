"""twinop's JAX binding: the op as three XLA FFI custom-call targets (twinop_bias_act,
twinop_bias_act_backward, twinop_bias_act_double_backward) for the CPU, and for CUDA where
twinop was built with it, and bias_act: eager or under jax.jit, differentiable to second order
in reverse and forward mode, with batching rules for jax.vmap."""
from . import _library  # noqa: F401  (registers the FFI targets; must come first)
from ._bias_act import bias_act

__all__ = ["bias_act"]
