"""RMSNorm's four FFI targets as JAX functions: checked at trace time, then one XLA custom call
each, typed as the inputs (_primitive.py). No derivative or batching rule of their own: they run
RMSNorm's primitives (_rms_norm_ops.py), which have."""
import jax
import jax.numpy as jnp

from ._library import ADD_RMS_NORM, ADD_RMS_NORM_BACKWARD, RMS_NORM, RMS_NORM_BACKWARD, check_rms_norm_args
from ._primitive import like, param_grad_like, row_stat_like
from ._sharding import vary_alike


def rstd_dtype(dtype):
    """rstd's dtype, the kernels' compute type: float64 for float64 x, else float32."""
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


def _forward_types(x):
    x = jax.typeof(x)
    return like(x), row_stat_like(x, rstd_dtype(x.dtype))


def _backward_types(x, weight):
    return like(jax.typeof(x)), param_grad_like(jax.typeof(weight), jax.typeof(x))


def rms_norm(x, weight, *, eps, offset):
    """(y, rstd)."""
    check_rms_norm_args(eps, offset, x, weight)
    x, weight = vary_alike(x, weight)
    return tuple(jax.ffi.ffi_call(RMS_NORM, _forward_types(x))(x, weight, eps=float(eps), offset=float(offset)))


def add_rms_norm(x, residual, weight, *, eps, offset):
    """(y, s, rstd): s = x + residual, then rms_norm's y and rstd at s."""
    check_rms_norm_args(eps, offset, x, residual, weight)
    x, residual, weight = vary_alike(x, residual, weight)
    y, rstd = _forward_types(x)
    return tuple(jax.ffi.ffi_call(ADD_RMS_NORM, (y, y, rstd))(x, residual, weight, eps=float(eps),
                                                                offset=float(offset)))


def rms_norm_backward(dy, x, rstd, weight, *, offset):
    """(dx, dweight), with the forward's rstd."""
    check_rms_norm_args(0.0, offset, dy, x, rstd, weight)
    dy, x, rstd, weight = vary_alike(dy, x, rstd, weight)
    return tuple(jax.ffi.ffi_call(RMS_NORM_BACKWARD, _backward_types(x, weight))(dy, x, rstd, weight,
                                                                                 offset=float(offset)))


def add_rms_norm_backward(dy, ds, s, rstd, weight, *, offset):
    """(dx, dweight) at add_rms_norm's s; dx (also d_residual) includes ds, the gradient at s."""
    check_rms_norm_args(0.0, offset, dy, ds, s, rstd, weight)
    dy, ds, s, rstd, weight = vary_alike(dy, ds, s, rstd, weight)
    return tuple(jax.ffi.ffi_call(ADD_RMS_NORM_BACKWARD, _backward_types(s, weight))(dy, ds, s, rstd, weight,
                                                                                     offset=float(offset)))
