"""Gradients of the gradient ops, for second order: BiasActGrad's is BiasActGradGrad, and
BiasActGradGrad's is exact but for one third-order term. tf.autodiff.ForwardAccumulator builds
JVPs by differentiating gradients, so forward mode and forward-over-reverse Hessians need both."""
import tensorflow as tf

from ._library import ops
from ._tensors import or_zeros as _or_zeros, sum_rows as _sum_rows


@tf.RegisterGradient("Twinop>BiasActGrad")
def _bias_act_grad_grad(op, g, g_bias):
    dy, x, bias = op.inputs
    return ops.twinop_bias_act_grad_grad(_or_zeros(g, x), _or_zeros(g_bias, bias), dy, x, bias,
                                         act=op.get_attr("act"))


# twinop-feature: forward-mode
@tf.RegisterGradient("Twinop>BiasActGradGrad")
def _bias_act_grad_grad_grad(op, a, b, c):
    """With v = x + bias, G = g + g_bias, a the gradient arriving at d_dy and B = b + c the one
    arriving at d_x (d_bias's reaches every row of d_x):
        g:  a act'(v) + B dy act''(v)         g_bias: its column sums
        dy: B G act''(v)
        x:  a G act''(v) + B G dy act'''(v)   bias: its column sums
    Every term but the last is BiasActGrad or BiasActGradGrad again. The act''' term is third
    order: Twinop>ThirdOrderTerm is zeros where B G dy is, and an error where it is evaluated
    otherwise, never a silent zero. It is stateless, so where this gradient is built but its x
    part unused (ForwardAccumulator's JVPs), TensorFlow prunes it."""
    g, g_bias, dy, x, bias = op.inputs
    act = op.get_attr("act")
    a, big_b = _or_zeros(a, x), _or_zeros(b, x) + _or_zeros(c, bias)
    grad = g + g_bias
    no_bias_grad = tf.zeros_like(bias)
    a_dx, a_dbias = ops.twinop_bias_act_grad(a, x, bias, act=act)
    _, b_dx, b_dbias = ops.twinop_bias_act_grad_grad(big_b, no_bias_grad, dy, x, bias, act=act)
    _, d_dy, _ = ops.twinop_bias_act_grad_grad(big_b, no_bias_grad, grad, x, bias, act=act)
    _, a_x, a_bias = ops.twinop_bias_act_grad_grad(a, no_bias_grad, grad, x, bias, act=act)
    third_order = ops.twinop_third_order_term(big_b * grad * dy)
    return a_dx + b_dx, a_dbias + b_dbias, d_dy, a_x + third_order, a_bias + _sum_rows(third_order)
