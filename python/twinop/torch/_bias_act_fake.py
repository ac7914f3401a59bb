"""Fake (meta) kernels: output shapes and dtypes without computing, for torch.compile and export."""
import torch


def _check_same_device(x, other, name):
    # The fake kernel is also the Meta kernel, which the dispatcher picks whenever any input is
    # on "meta": without this check, x on cpu with bias on meta would return garbage.
    torch._check(other.device == x.device,
                 lambda: f"twinop.bias_act: {name} must be on the device of x ({x.device}); got {other.device}")


@torch.library.register_fake("twinop::bias_act")
def _bias_act_fake(x, bias, act):
    _check_same_device(x, bias, "bias")
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.register_fake("twinop::bias_act_backward")
def _bias_act_backward_fake(dy, x, bias, act):
    _check_same_device(x, bias, "bias")
    _check_same_device(x, dy, "dy")
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(bias, memory_format=torch.contiguous_format))


# twinop-feature: second-order
@torch.library.register_fake("twinop::bias_act_double_backward")
def _bias_act_double_backward_fake(g, g_bias, dy, x, bias, act):
    for other, name in ((bias, "bias"), (dy, "dy"), (g, "g"), (g_bias, "g_bias")):
        _check_same_device(x, other, name)
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(bias, memory_format=torch.contiguous_format))


# twinop-feature: out
@torch.library.register_fake("twinop::bias_act.out")
def _bias_act_out_fake(x, bias, act, *, out):
    _check_same_device(x, bias, "bias")
    _check_same_device(x, out, "out")
    return out


@torch.library.register_fake("twinop::bias_act_backward.out")
def _bias_act_backward_out_fake(dy, x, bias, act, *, dx, dbias):
    for other, name in ((bias, "bias"), (dy, "dy"), (dx, "dx"), (dbias, "dbias")):
        _check_same_device(x, other, name)
    return dx, dbias
