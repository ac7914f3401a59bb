"""BiasAct: the Keras 3 layer form of bias_act, holding its bias. (RMSNorm's is in _rms_norm.py.)"""
import keras

from .. import ACTIVATIONS
from ._bias_act import bias_act


# Registered under "twinop>BiasAct", so keras.models.load_model finds the class after
# `import twinop.tf`, with no custom_objects.
@keras.saving.register_keras_serializable(package="twinop")
class BiasAct(keras.layers.Layer):
    """y = act(x + bias), with a learnable bias of x.shape[-1] elements built on the first call:
    the bias and activation that follow a Dense(units, use_bias=False), fused in one kernel.
    The bias starts at zeros, as Dense's does."""

    def __init__(self, act="gelu", **kwargs):
        super().__init__(**kwargs)
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}; got {act!r}")
        self.act = act
        # XLA cannot compile a custom op: this keeps Keras's jit_compile="auto" (on GPU) off, and
        # turns jit_compile=True into a warning instead of a failed train step.
        self.supports_jit = False

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"BiasAct needs the last dimension of its input to be known; got shape {input_shape}")
        self.bias = self.add_weight(shape=(features,), initializer="zeros", name="bias")

    def call(self, x):
        # Under a mixed-precision policy Keras has already cast x, and casts the bias on read,
        # to the compute dtype.
        return bias_act(x, self.bias, self.act)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "act": self.act}

