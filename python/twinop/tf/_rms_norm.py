"""rms_norm and add_rms_norm: the Twinop>RmsNorm and Twinop>AddRmsNorm ops with the dtype checks
that name the argument (their gradients are _rms_norm_gradient.py's), and the Keras layer RMSNorm."""
import keras
import tensorflow as tf

from ._library import ops
from ._tensors import as_tensor, check_x_dtype


def _checked(x, weight, residual=None):
    """(x, weight, residual) as tensors, their dtypes checked: weight of x's dtype, or float32 for
    float16 and bfloat16 x; residual of x's."""
    x = as_tensor(x)
    weight = as_tensor(weight, dtype_hint=x.dtype)
    check_x_dtype(x)
    half_x = x.dtype in (tf.float16, tf.bfloat16)
    if weight.dtype != x.dtype and not (half_x and weight.dtype == tf.float32):
        raise TypeError(f"weight must have the dtype of x ({x.dtype.name}){' or float32' if half_x else ''}; "
                        f"got {weight.dtype.name}")
    if residual is not None:
        residual = as_tensor(residual, dtype_hint=x.dtype)
        if residual.dtype != x.dtype:
            raise TypeError(f"residual must have the dtype of x ({x.dtype.name}); got {residual.dtype.name}")
    return x, weight, residual


def _rstd_dtype(x):
    """The ops' U attr: rstd in the compute type, float64 for float64 x, else float32."""
    return tf.float64 if x.dtype == tf.float64 else tf.float32


def rms_norm(x, weight, eps=1e-6, *, offset=0.0):
    """y = x / sqrt(mean(x^2 over the last axis) + eps) * (weight + offset), computed in float32
    (float64 for float64) and rounded once to x's dtype. weight: shape (x.shape[-1],), x's dtype or
    float32 for float16/bfloat16 x. eps and offset are TensorFlow float attrs: 32-bit. Differentiable
    in x and weight to any order, in reverse and forward mode."""
    x, weight, _ = _checked(x, weight)
    return ops.twinop_rms_norm(x, weight, U=_rstd_dtype(x), eps=eps, offset=offset)[0]


def add_rms_norm(x, residual, weight, eps=1e-6, *, offset=0.0):
    """(y, s): s = x + residual (in x's dtype, as x + residual is), y = rms_norm(s, weight, eps,
    offset=offset), in one pass: the residual add and norm of a pre-norm transformer block."""
    x, weight, residual = _checked(x, weight, residual)
    y, s, _ = ops.twinop_add_rms_norm(x, residual, weight, U=_rstd_dtype(x), eps=eps, offset=offset)
    return y, s


# twinop-feature: module
@keras.saving.register_keras_serializable(package="twinop")
class RMSNorm(keras.layers.Layer):
    """y = x / sqrt(mean(x^2 over the last axis) + epsilon) * (scale + offset), with a learnable
    scale of x.shape[-1] elements built on the first call: keras.layers.RMSNormalization(axis=-1)
    fused in one kernel, its weight named and initialized as that layer's (`scale`, ones), so
    either loads the other's weights. With offset=1.0 (Gemma's convention) start the scale at zeros.
    Under a mixed-precision policy the scale stays float32 (not cast to the compute dtype): the
    kernel takes float32 weights with float16 and bfloat16 x, and dscale is never rounded to them."""

    def __init__(self, epsilon=1e-6, *, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.offset = offset
        self.supports_jit = False  # as BiasAct: XLA cannot compile a custom op

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"RMSNorm needs the last dimension of its input to be known; got shape {input_shape}")
        self.scale = self.add_weight(shape=(features,), initializer="ones", name="scale", autocast=False)

    def call(self, x):
        return rms_norm(x, self.scale, self.epsilon, offset=self.offset)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "offset": self.offset}
