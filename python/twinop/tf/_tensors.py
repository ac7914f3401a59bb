"""Small tensor helpers every op's Python side shares."""
import tensorflow as tf


def as_tensor(value, **hint):
    """value as a tf.Tensor: a tensor as it is, without tf.convert_to_tensor's dispatch (~3 us a call)."""
    return value if isinstance(value, tf.Tensor) else tf.convert_to_tensor(value, **hint)


# twinop-feature: second-order
def or_zeros(grad, like):
    """An output gradient TensorFlow passes as None (nothing flows into that output) as zeros."""
    return tf.zeros_like(like) if grad is None else grad


def sum_rows(t):
    """t summed over every axis but the last (any shape, empty ones included)."""
    return tf.reduce_sum(t, axis=tf.range(tf.rank(t) - 1))


# twinop-feature: end
FLOAT_DTYPES = (tf.float32, tf.float64, tf.float16, tf.bfloat16)


def check_x_dtype(x):
    """Checked in Python so that eager mode names the argument as graph mode does (TypeError either way)."""
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x must be float32, float64, float16 or bfloat16; got {x.dtype.name}")
