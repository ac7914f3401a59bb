"""Fake (meta) kernels: output shapes and dtypes without computing, for torch.compile and export."""
import torch


@torch.library.register_fake("twinop::bias_act")
def _bias_act_fake(x, bias, act):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.register_fake("twinop::bias_act_backward")
def _bias_act_backward_fake(dy, x, bias, act):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(bias, memory_format=torch.contiguous_format))
