"""The argument rules of twinop.torch.bias_act (and the helpers rms_norm's use, _rms_norm.py),
checked before the op is called, with the messages of csrc/core/bias_act_args.h and arg_checks.h:
the classic library raises them from C++ as TypeError and ValueError, the stable-ABI library only as
RuntimeError (the stable API has no other). Checked here, the entry points raise the same
exception, with the same message, whichever is loaded."""
import torch

from .. import ACTIVATIONS

SUPPORTED = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
PREFIX = "twinop.bias_act: "


def c10_name(dtype):
    """The dtype as torch's C++ spells it in the ops' messages (Float, Int, ComplexFloat)."""
    return torch.empty(0, dtype=dtype).type().rsplit(".", 1)[-1].removesuffix("Tensor")


def shape_text(shape):
    return "[" + ", ".join(map(str, shape)) + "]"


def _quoted(name, max_bytes=64):
    """bias_act_args.h's quoted(): the name's first 64 UTF-8 bytes, those other than printable ASCII
    as \\xNN, so the message is one line of text whatever was passed."""
    data = name.encode("utf-8")
    text = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data[:max_bytes])
    return f"'{text}'" + (f"... ({len(data)} bytes)" if len(data) > max_bytes else "")


def check_x(prefix, x):
    if x.dtype not in SUPPORTED:
        raise TypeError(f"{prefix}x must be float32, float64, float16 or bfloat16; got {c10_name(x.dtype)}")
    if x.dim() == 0:
        raise ValueError(f"{prefix}x must have at least 1 dimension (features last); got a 0-d tensor")


def check_bias_act_args(x, bias, act):
    """TypeError (dtype) or ValueError (shape, activation) for what twinop::bias_act refuses."""
    check_x(PREFIX, x)
    if bias.dim() != 1:
        raise ValueError(f"{PREFIX}bias must be 1-D; got shape {shape_text(bias.shape)}")
    if bias.shape[0] != x.shape[-1]:
        raise ValueError(f"{PREFIX}bias must have x.shape[-1] = {x.shape[-1]} elements; got {bias.shape[0]}")
    if bias.dtype != x.dtype:
        raise TypeError(f"{PREFIX}bias must have the dtype of x ({c10_name(x.dtype)}); got {c10_name(bias.dtype)}")
    if isinstance(act, str) and act not in ACTIVATIONS:  # other types: PyTorch's own argument parser
        try:
            quoted = _quoted(act)
        except UnicodeEncodeError:  # a lone surrogate: PyTorch's parser refuses it too
            return
        raise ValueError(f"{PREFIX}act must be one of {', '.join(ACTIVATIONS)}; got {quoted}")


def check_same_as(prefix, t, name, like, like_name):
    """arg_checks.h's check_same_as: t has like's dtype and shape."""
    if t.dtype != like.dtype:
        raise TypeError(f"{prefix}{name} must have the dtype of {like_name} ({c10_name(like.dtype)}); "
                        f"got {c10_name(t.dtype)}")
    if t.shape != like.shape:
        raise ValueError(f"{prefix}{name} must have the shape of {like_name} {shape_text(like.shape)}; "
                         f"got {shape_text(t.shape)}")


# twinop-feature: out
def check_out_arg(out, name, like, like_name):
    """The rules of an out= tensor that need no memory addresses (arg_checks.h's check_out_arg and
    the device rule); whether it overlaps an input is checked by the op itself."""
    check_same_as(PREFIX, out, name, like, like_name)
    if not out.is_contiguous():
        raise ValueError(f"{PREFIX}{name} must be contiguous")
    if out.device != like.device:
        raise RuntimeError(f"{PREFIX}{name} must be on the device of {like_name} ({like.device}); got {out.device}")

