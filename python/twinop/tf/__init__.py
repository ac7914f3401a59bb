"""twinop's TensorFlow binding: the ops Twinop>BiasAct / Twinop>BiasActGrad /
Twinop>BiasActGradGrad and Twinop>RmsNorm / AddRmsNorm / RmsNormGrad / AddRmsNormGrad, their
gradients (bias_act's to second order, RMSNorm's to any), bias_act, rms_norm and add_rms_norm for
eager mode and tf.function, and the Keras layers BiasAct and RMSNorm.

A SavedModel or a Keras model that uses the op needs `import twinop.tf` before
tf.saved_model.load / keras.models.load_model: it loads the op library and registers the layer.
"""
from . import _bias_act_gradient, _bias_act_second_order, _rms_norm_gradient  # noqa: F401  (gradients)
from ._bias_act import bias_act
from ._library import ops as _ops  # noqa: F401  (the raw ops, for tests)
from ._rms_norm import RMSNorm, add_rms_norm, rms_norm
from .layer import BiasAct

__all__ = ["BiasAct", "RMSNorm", "add_rms_norm", "bias_act", "rms_norm"]
