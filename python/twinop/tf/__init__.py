"""twinop's TensorFlow binding: the ops Twinop>BiasAct / Twinop>BiasActGrad /
Twinop>BiasActGradGrad, their gradients (to second order), bias_act for eager mode and
tf.function, and the Keras layer BiasAct.

A SavedModel or a Keras model that uses the op needs `import twinop.tf` before
tf.saved_model.load / keras.models.load_model: it loads the op library and registers the layer.
"""
from . import _gradient, _second_order  # noqa: F401  (register the gradients on import)
from ._bias_act import bias_act
from ._library import ops as _ops  # noqa: F401  (the raw ops, for tests)
from .layer import BiasAct

__all__ = ["BiasAct", "bias_act"]
