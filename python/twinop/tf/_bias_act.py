"""bias_act: the Twinop>BiasAct op with the dtype checks that name the argument."""
import tensorflow as tf

from ._library import ops


def _as_tensor(value, **hint):
    """value as a tf.Tensor: a tensor as it is, without tf.convert_to_tensor's dispatch (~3 us a call)."""
    return value if isinstance(value, tf.Tensor) else tf.convert_to_tensor(value, **hint)


def bias_act(x, bias, act="gelu"):
    """y = act(x + bias), bias of shape (x.shape[-1],); differentiable in x and bias."""
    x = _as_tensor(x)
    bias = _as_tensor(bias, dtype_hint=x.dtype)
    if act is None:  # the op's generated wrapper would silently take its default, 'gelu'
        raise TypeError("act must be a str naming the activation; got None")
    # Checked here so eager mode names the argument, as graph mode does (TypeError either way).
    if not x.dtype.is_floating:
        raise TypeError(f"x must be float32, float64, float16 or bfloat16; got {x.dtype.name}")
    if bias.dtype != x.dtype:
        raise TypeError(f"bias must have the dtype of x ({x.dtype.name}); got {bias.dtype.name}")
    return ops.twinop_bias_act(x, bias, act=act)
