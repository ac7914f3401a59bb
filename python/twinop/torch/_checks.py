"""The argument rules of twinop.torch.bias_act, checked before the op is called, with the
messages of csrc/core/validate.h: the classic library raises them from C++ as TypeError and
ValueError, the stable-ABI library only as RuntimeError (the stable API has no other). Checked
here, the entry points raise the same exception, with the same message, whichever is loaded."""
import torch

from .. import ACTIVATIONS

SUPPORTED = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
PREFIX = "twinop.bias_act: "


def _c10_name(dtype):
    """The dtype as torch's C++ spells it in the ops' messages (Float, Int, ComplexFloat)."""
    return torch.empty(0, dtype=dtype).type().rsplit(".", 1)[-1].removesuffix("Tensor")


def _shape(shape):
    return "[" + ", ".join(map(str, shape)) + "]"


def _quoted(name, max_bytes=64):
    """validate.h's quoted(): the name's first 64 UTF-8 bytes, those other than printable ASCII
    as \\xNN, so the message is one line of text whatever was passed."""
    data = name.encode("utf-8")
    text = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data[:max_bytes])
    return f"'{text}'" + (f"... ({len(data)} bytes)" if len(data) > max_bytes else "")


def check_bias_act_args(x, bias, act):
    """TypeError (dtype) or ValueError (shape, activation) for what twinop::bias_act refuses."""
    if x.dtype not in SUPPORTED:
        raise TypeError(f"{PREFIX}x must be float32, float64, float16 or bfloat16; got {_c10_name(x.dtype)}")
    if x.dim() == 0:
        raise ValueError(f"{PREFIX}x must have at least 1 dimension (features last); got a 0-d tensor")
    if bias.dim() != 1:
        raise ValueError(f"{PREFIX}bias must be 1-D; got shape {_shape(bias.shape)}")
    if bias.shape[0] != x.shape[-1]:
        raise ValueError(f"{PREFIX}bias must have x.shape[-1] = {x.shape[-1]} elements; got {bias.shape[0]}")
    if bias.dtype != x.dtype:
        raise TypeError(f"{PREFIX}bias must have the dtype of x ({_c10_name(x.dtype)}); got {_c10_name(bias.dtype)}")
    if isinstance(act, str) and act not in ACTIVATIONS:  # other types: PyTorch's own argument parser
        try:
            quoted = _quoted(act)
        except UnicodeEncodeError:  # a lone surrogate: PyTorch's parser refuses it too
            return
        raise ValueError(f"{PREFIX}act must be one of {', '.join(ACTIVATIONS)}; got {quoted}")


# twinop-feature: out
def check_out_arg(out, name, like, like_name):
    """The rules of an out= tensor that need no memory addresses (validate.h's check_out_arg and
    the device rule); whether it overlaps an input is checked by the op itself."""
    if out.dtype != like.dtype:
        raise TypeError(f"{PREFIX}{name} must have the dtype of {like_name} ({_c10_name(like.dtype)}); "
                        f"got {_c10_name(out.dtype)}")
    if out.shape != like.shape:
        raise ValueError(f"{PREFIX}{name} must have the shape of {like_name} {_shape(like.shape)}; "
                         f"got {_shape(out.shape)}")
    if not out.is_contiguous():
        raise ValueError(f"{PREFIX}{name} must be contiguous")
    if out.device != like.device:
        raise RuntimeError(f"{PREFIX}{name} must be on the device of {like_name} ({like.device}); got {out.device}")
