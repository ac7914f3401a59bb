"""Loads the compiled handler library and registers its XLA FFI handlers as custom-call targets.

ctypes and jax.ffi.pycapsule rather than a pybind11 module: the library is plain C++ with a C
interface (csrc/jax/bias_act_ops.h, csrc/jax/rms_norm.cpp), so it needs no Python headers,
links nothing of Python or jaxlib, and skips pybind11's compile time (jax's examples/ffi loads its
CUDA library this way).
"""
import ctypes

import jax

from .. import _build_info, _loader

FORWARD, BACKWARD, DOUBLE_BACKWARD = "twinop_bias_act", "twinop_bias_act_backward", "twinop_bias_act_double_backward"
RMS_NORM, ADD_RMS_NORM = "twinop_rms_norm", "twinop_add_rms_norm"
RMS_NORM_BACKWARD, ADD_RMS_NORM_BACKWARD = "twinop_rms_norm_backward", "twinop_add_rms_norm_backward"

library = ctypes.CDLL(_loader.library_path("jax", _build_info.JAX_VERSION, jax.__version__, "_twinop_jax.so"))

# One target name per op for both platforms: XLA picks the handler of the platform it compiles for.
_HANDLERS = {FORWARD: "TwinopBiasAct", BACKWARD: "TwinopBiasActBackward",
             DOUBLE_BACKWARD: "TwinopBiasActDoubleBackward", RMS_NORM: "TwinopRmsNorm",
             ADD_RMS_NORM: "TwinopAddRmsNorm", RMS_NORM_BACKWARD: "TwinopRmsNormBackward",
             ADD_RMS_NORM_BACKWARD: "TwinopAddRmsNormBackward"}
_PLATFORMS = {"cpu": "Cpu", **({"CUDA": "Cuda"} if _build_info.WITH_CUDA else {})}
for _target, _symbol in _HANDLERS.items():
    for _platform, _suffix in _PLATFORMS.items():
        jax.ffi.register_ffi_target(_target, jax.ffi.pycapsule(getattr(library, _symbol + _suffix)), platform=_platform)

# twinop-feature: shapes
_ARRAYS = (ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_int),
           ctypes.POINTER(ctypes.POINTER(ctypes.c_int64)))  # count, dtype names, ranks, shapes
_MESSAGE = (ctypes.c_char_p, ctypes.c_size_t)
library.TwinopBiasActCheckArgs.restype = library.TwinopRmsNormCheckArgs.restype = ctypes.c_int
library.TwinopBiasActCheckArgs.argtypes = (*_ARRAYS, ctypes.c_char_p, ctypes.c_size_t, *_MESSAGE)
library.TwinopRmsNormCheckArgs.argtypes = (*_ARRAYS, ctypes.c_double, ctypes.c_double, *_MESSAGE)


def _check(op, check, arrays, *attrs):
    """Raises TypeError / ValueError if `arrays` (anything with .shape and .dtype: arrays, tracers,
    ShapeDtypeStructs), the arguments of one target in order, break the op's rules."""
    count = len(arrays)
    shapes = [(ctypes.c_int64 * max(len(a.shape), 1))(*a.shape) for a in arrays]
    message = ctypes.create_string_buffer(512)
    kind = check(count, (ctypes.c_char_p * count)(*(str(a.dtype).encode() for a in arrays)),
                 (ctypes.c_int * count)(*(len(a.shape) for a in arrays)),
                 (ctypes.POINTER(ctypes.c_int64) * count)(*shapes), *attrs, message, len(message))
    if kind:
        raise (TypeError if kind == 1 else ValueError)(f"{op}: {message.value.decode()}")


def check_args(act, *arrays):
    """bias_act's rules, for its forward (x, bias), backward or double backward arguments."""
    # Every byte of the name, a NUL included (c_char_p alone would stop there); a lone surrogate
    # or a value that is not a str gets the same ValueError as any other bad name.
    name = (act if isinstance(act, str) else repr(act)).encode("utf-8", "surrogatepass")
    _check("twinop.bias_act", library.TwinopBiasActCheckArgs, arrays, name, len(name))


def check_rms_norm_args(eps, offset, *arrays):
    """RMSNorm's rules, for the arguments of rms_norm, add_rms_norm or their backward targets."""
    _check("twinop.rms_norm", library.TwinopRmsNormCheckArgs, arrays, eps, offset)
