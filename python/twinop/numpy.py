"""twinop's numpy binding: float32, float64, float16 and (with ml_dtypes) bfloat16 arrays.

bias_act(x, bias, act="gelu", *, out=None) -> y
bias_act_backward(dy, x, bias, act="gelu", *, out=None) -> (dx, dbias)      out: a tuple (dx, dbias)
bias_act_double_backward(g, dy, x, bias, act="gelu", *, g_bias=None) -> (d_dy, d_x, d_bias)

rms_norm(x, weight, eps=1e-6, *, offset=0.0, out=None) -> y
rms_norm_backward(dy, x, weight, eps=1e-6, *, offset=0.0) -> (dx, dweight)
add_rms_norm(x, residual, weight, eps=1e-6, *, offset=0.0) -> (y, s)          s = x + residual

Large calls run on several threads with the GIL released: by default as many as the CPUs this
process may run on (torch's and TensorFlow's default too); set_num_threads(n) changes it.
"""
import os

from ._twinop_numpy import (ACTIVATIONS, add_rms_norm, bias_act, bias_act_backward, bias_act_double_backward,
                            get_num_threads, rms_norm, rms_norm_backward, set_num_threads)

__all__ = ["ACTIVATIONS", "add_rms_norm", "bias_act", "bias_act_backward", "bias_act_double_backward",
           "get_num_threads", "rms_norm", "rms_norm_backward", "set_num_threads"]

set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
