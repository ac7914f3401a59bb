"""bias_act as a torch.autograd.Function, for forward-mode AD and torch.func (grad, jacrev,
jacfwd, hessian, vmap), which the ops' own autograd cannot serve: torch.library has no
register_jvp, and torch.func refuses an op whose autograd is register_autograd's (open
upstream: pytorch#168393). Why not only this Function: Dynamo refuses a Function with a custom
jvp, so under torch.compile and torch.export bias_act() calls the op, whose autograd is
registered on it (_bias_act_autograd.py, _bias_act_second_order.py). Both routes run the same three ops.

Three Functions, one per op, each differentiated by the next, in both modes:
  BiasAct:               y = act(v), v = x + bias.  backward: BiasActBackward (the op alone
                         where nothing will differentiate the backward).
                         jvp: act'(v) (t_x + t_bias), the backward's dx with dy = t_v.
  BiasActBackward:       (dx, dbias).  backward: BiasActDoubleBackward.
                         jvp: t_dy act'(v) + dy act''(v) t_v, and its column sums.
  BiasActDoubleBackward: third order raises (_bias_act_second_order.THIRD_ORDER_ERROR).
Their forwards call the ops, so vmap (generate_vmap_rule) reaches the ops' batching rules
(_bias_act_vmap.py).
"""
import torch

from ._bias_act_second_order import THIRD_ORDER_ERROR, zeros_like_saved
from ._dual_check import in_dual_level
from ._no_derivative import NoDerivative

ops = torch.ops.twinop


def _row_tangent(t_x, t_bias, x):
    """The tangent of v = x + bias, from the inputs' tangents (None where an input has none)."""
    if t_x is None:
        return (torch.zeros_like(x) if t_bias is None else t_bias).expand_as(x)
    return t_x if t_bias is None else t_x + t_bias


def _backward():
    """BiasActBackward.apply where the backward may itself be differentiated (create_graph, or a
    forward-mode level open: forward-over-reverse), else the op alone: the same result without
    Function.apply's cost."""
    if torch.is_grad_enabled() or in_dual_level():
        return BiasActBackward.apply
    return ops.bias_act_backward


class BiasAct(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, bias, act):
        return ops.bias_act(x, bias, act)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, bias, act = inputs
        ctx.save_for_backward(x, bias)
        ctx.save_for_forward(x, bias)
        ctx.act = act

    @staticmethod
    def backward(ctx, dy):
        x, bias = ctx.saved_tensors
        dx, dbias = _backward()(dy, x, bias, ctx.act)
        return dx, dbias, None

    @staticmethod
    def jvp(ctx, t_x, t_bias, _):
        x, bias = ctx.saved_tensors
        # act'(v) * t is the backward's dx with dy = t: no kernel of its own.
        return BiasActBackward.apply(_row_tangent(t_x, t_bias, x), x, bias, ctx.act)[0]


class BiasActBackward(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(dy, x, bias, act):
        return ops.bias_act_backward(dy, x, bias, act)

    @staticmethod
    def setup_context(ctx, inputs, output):
        dy, x, bias, act = inputs
        ctx.save_for_backward(dy, x, bias)
        ctx.save_for_forward(dy, x, bias)
        ctx.act = act
        ctx.set_materialize_grads(False)  # zeros_like_saved makes them, like x: a DTensor's as DTensors

    @staticmethod
    def backward(ctx, g, g_bias):
        dy, x, bias = ctx.saved_tensors
        g, g_bias = zeros_like_saved(g, x), zeros_like_saved(g_bias, bias)
        d_dy, d_x, d_bias = BiasActDoubleBackward.apply(g, g_bias, dy, x, bias, ctx.act)
        return d_dy, d_x, d_bias, None

    @staticmethod
    def jvp(ctx, t_dy, t_x, t_bias, _):
        dy, x, bias = ctx.saved_tensors
        t_dx, t_dbias = torch.zeros_like(x), torch.zeros_like(bias)
        if t_dy is not None:  # dx = dy act'(v) is linear in dy: its dy part is the backward again
            t_dx, t_dbias = BiasActBackward.apply(t_dy, x, bias, ctx.act)
        if t_x is not None or t_bias is not None:  # its v part is the double backward's d_x, g = t_v
            t_v = _row_tangent(t_x, t_bias, x)
            _, d_x, d_bias = BiasActDoubleBackward.apply(t_v, torch.zeros_like(bias), dy, x, bias, ctx.act)
            t_dx, t_dbias = t_dx + d_x, t_dbias + d_bias
        return t_dx, t_dbias


class BiasActDoubleBackward(NoDerivative):
    MESSAGE = THIRD_ORDER_ERROR

    @staticmethod
    def forward(g, g_bias, dy, x, bias, act):
        return ops.bias_act_double_backward(g, g_bias, dy, x, bias, act)
