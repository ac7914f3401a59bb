"""The three FFI targets as JAX functions: checked at trace time, then one XLA custom call each.

They have no derivative and no batching rule of their own (vmap_method is left unset, so a
vmap that reached them would raise): _vmap.py gives them batching rules, and _gradient.py and
_second_order.py their derivatives.
"""
import jax

from ._library import BACKWARD, DOUBLE_BACKWARD, FORWARD, check_args


def _like(a):
    return jax.ShapeDtypeStruct(a.shape, a.dtype)


def forward(x, bias, *, act):
    """y = act(x + bias)."""
    check_args(act, x, bias)
    return jax.ffi.ffi_call(FORWARD, _like(x))(x, bias, act=act)


def backward(dy, x, bias, *, act):
    """(dx, dbias): dx = dy act'(x + bias), dbias = dx summed over every axis but the last."""
    check_args(act, dy, x, bias)
    return tuple(jax.ffi.ffi_call(BACKWARD, (_like(x), _like(bias)))(dy, x, bias, act=act))


def double_backward(g, g_bias, dy, x, bias, *, act):
    """(d_dy, d_x, d_bias): the gradients of backward's inputs, given g at dx and g_bias at dbias."""
    check_args(act, g, g_bias, dy, x, bias)
    return tuple(jax.ffi.ffi_call(DOUBLE_BACKWARD, (_like(x), _like(x), _like(bias)))(g, g_bias, dy, x, bias, act=act))
