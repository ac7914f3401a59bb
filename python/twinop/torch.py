"""twinop's PyTorch binding: the ops torch.ops.twinop.bias_act / bias_act_backward, their
fake kernels (for torch.compile and export) and autograd, and the differentiable bias_act."""
import torch

from . import _build_info, _loader

torch.ops.load_library(_loader.library_path("torch", _build_info.TORCH_VERSION, torch.__version__, "_twinop_torch.so"))

__all__ = ["bias_act"]


@torch.library.register_fake("twinop::bias_act")
def _bias_act_fake(x, bias, act):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.register_fake("twinop::bias_act_backward")
def _bias_act_backward_fake(dy, x, bias, act):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(bias, memory_format=torch.contiguous_format))


def _setup_context(ctx, inputs, output):
    x, bias, act = inputs
    ctx.save_for_backward(x, bias)  # the backward recomputes act'(x + bias) from these alone
    ctx.act = act


def _backward(ctx, dy):
    x, bias = ctx.saved_tensors
    dx, dbias = torch.ops.twinop.bias_act_backward(dy, x, bias, ctx.act)
    return dx, dbias, None


torch.library.register_autograd("twinop::bias_act", _backward, setup_context=_setup_context)


def bias_act(x: torch.Tensor, bias: torch.Tensor, act: str = "gelu") -> torch.Tensor:
    """y = act(x + bias), bias of shape (x.shape[-1],); differentiable in x and bias."""
    return torch.ops.twinop.bias_act(x, bias, act)
