"""The gradient of Twinop>BiasAct: the Twinop>BiasActGrad op."""
import tensorflow as tf

from ._library import ops


@tf.RegisterGradient("Twinop>BiasAct")
def _bias_act_grad(op, dy):
    x, bias = op.inputs
    return ops.twinop_bias_act_grad(dy, x, bias, act=op.get_attr("act"))
