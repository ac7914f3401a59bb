"""Autograd for twinop::bias_act: the backward is the bias_act_backward op. (The out= overloads'
autograd kernel is C++, csrc/torch/bias_act_out_autograd.cpp: register_autograd refuses them.)"""
import torch


def _setup_context(ctx, inputs, output):
    x, bias, act = inputs
    ctx.save_for_backward(x, bias)  # the backward recomputes act'(x + bias) from these alone
    ctx.act = act


def _backward(ctx, dy):
    x, bias = ctx.saved_tensors
    dx, dbias = torch.ops.twinop.bias_act_backward(dy, x, bias, ctx.act)
    return dx, dbias, None


torch.library.register_autograd("twinop::bias_act", _backward, setup_context=_setup_context)
