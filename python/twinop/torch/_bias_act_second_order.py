"""Autograd for the gradient ops, so the ops themselves differentiate to second order for every
caller of torch.ops.twinop.*: bias_act_backward's gradient is bias_act_double_backward, whose
own gradient is an error rather than a silently wrong third derivative. Forward mode and
torch.func need more (_bias_act_function.py)."""
import torch

THIRD_ORDER_ERROR = ("twinop.bias_act: third-order derivatives are not supported "
                     "(twinop::bias_act_double_backward has no derivative)")


def zeros_like_saved(grad, saved):
    """An output's gradient, or zeros where the loss did not use that output. Autograd's own zeros
    for it (a materialized gradient) are plain tensors even where the saved inputs are DTensors,
    which the op then refuses (mixed torch.Tensor and DTensor): made here like the saved input,
    they are whatever it is."""
    return torch.zeros_like(saved) if grad is None else grad


def _backward_setup_context(ctx, inputs, output):
    dy, x, bias, act = inputs
    ctx.save_for_backward(dy, x, bias)
    ctx.act = act
    ctx.set_materialize_grads(False)  # zeros_like_saved makes them, like x: a DTensor's as DTensors


def _backward_backward(ctx, g, g_bias):
    dy, x, bias = ctx.saved_tensors
    g, g_bias = zeros_like_saved(g, x), zeros_like_saved(g_bias, bias)
    d_dy, d_x, d_bias = torch.ops.twinop.bias_act_double_backward(g, g_bias, dy, x, bias, ctx.act)
    return d_dy, d_x, d_bias, None


def _double_backward_backward(ctx, *grads):
    raise NotImplementedError(THIRD_ORDER_ERROR)


torch.library.register_autograd("twinop::bias_act_backward", _backward_backward,
                                setup_context=_backward_setup_context)
torch.library.register_autograd("twinop::bias_act_double_backward", _double_backward_backward,
                                setup_context=lambda ctx, inputs, output: None)
