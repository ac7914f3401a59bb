"""bias_act: the Twinop>BiasAct op with the dtype checks that name the argument."""
from ._library import ops
from ._tensors import as_tensor, check_x_dtype


def bias_act(x, bias, act="gelu"):
    """y = act(x + bias), bias of shape (x.shape[-1],); differentiable in x and bias."""
    x = as_tensor(x)
    bias = as_tensor(bias, dtype_hint=x.dtype)
    if act is None:  # the op's generated wrapper would silently take its default, 'gelu'
        raise TypeError("act must be a str naming the activation; got None")
    check_x_dtype(x)
    if bias.dtype != x.dtype:
        raise TypeError(f"bias must have the dtype of x ({x.dtype.name}); got {bias.dtype.name}")
    return ops.twinop_bias_act(x, bias, act=act)
