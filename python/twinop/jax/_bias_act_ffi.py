"""The three FFI targets as JAX functions: checked at trace time, then one XLA custom call each.

They have no derivative and no batching rule of their own (vmap_method is left unset, so a
vmap that reached them would raise): they run bias_act's primitives (_bias_act_ops.py), which have.

Result types are the inputs' own (jax.typeof), not only their shape and dtype: a sharded x's
sharding, and inside shard_map the manual axes x varies over, which jax.grad checks.
"""
import jax

from ._library import BACKWARD, DOUBLE_BACKWARD, FORWARD, check_args
from ._primitive import like, param_grad_like
from ._sharding import vary_alike


def _like(x):
    return like(jax.typeof(x))


def _bias_like(bias, x):
    """dbias's type: bias's shape and sharding, varying like x (_primitive.param_grad_like)."""
    return param_grad_like(jax.typeof(bias), jax.typeof(x))


def forward(x, bias, *, act):
    """y = act(x + bias)."""
    check_args(act, x, bias)
    x, bias = vary_alike(x, bias)
    return jax.ffi.ffi_call(FORWARD, _like(x))(x, bias, act=act)


def backward(dy, x, bias, *, act):
    """(dx, dbias): dx = dy act'(x + bias), dbias = dx summed over every axis but the last."""
    check_args(act, dy, x, bias)
    dy, x, bias = vary_alike(dy, x, bias)
    return tuple(jax.ffi.ffi_call(BACKWARD, (_like(x), _bias_like(bias, x)))(dy, x, bias, act=act))


# twinop-feature: second-order
def double_backward(g, g_bias, dy, x, bias, *, act):
    """(d_dy, d_x, d_bias): the gradients of backward's inputs, given g at dx and g_bias at dbias."""
    check_args(act, g, g_bias, dy, x, bias)
    g, g_bias, dy, x, bias = vary_alike(g, g_bias, dy, x, bias)
    types = (_like(x), _like(x), _bias_like(bias, x))
    return tuple(jax.ffi.ffi_call(DOUBLE_BACKWARD, types)(g, g_bias, dy, x, bias, act=act))
