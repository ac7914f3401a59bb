"""twinop's JAX binding: the ops as XLA FFI custom-call targets (twinop_bias_act and its backward
and double backward; twinop_rms_norm, twinop_add_rms_norm and their backwards) for the CPU, and
for CUDA where twinop was built with it, and bias_act, rms_norm, add_rms_norm: eager or under
jax.jit, differentiable in reverse and forward mode, with batching rules for jax.vmap."""
from . import _library  # noqa: F401  (registers the FFI targets; must come first)
from ._bias_act import bias_act
from ._rms_norm import add_rms_norm, rms_norm

__all__ = ["add_rms_norm", "bias_act", "rms_norm"]
