"""bias_act's five primitives, each run by the FFI calls (_bias_act_ffi.py, partitioned on Auto
meshes by _auto_partitioning.py). With v = x + bias (bias broadcast over x's rows):

  forward(x, bias)                      y = act(v)
  tangent(x, bias, t_x, t_bias)         act'(v) (t_x + t_bias): y's tangent, linear in t_x, t_bias
  backward(dy, x, bias)                 (dx, dbias) = (dy act'(v), dx summed over rows): linear in dy
  backward_tangent(t_dy, t_x, t_bias, dy, x, bias)
                                        the tangent of backward's (dx, dbias): linear in t_dy, t_x,
                                        t_bias (t_dy act'(v) + dy act''(v) (t_x + t_bias), summed)
  double_backward(g, g_bias, dy, x, bias)
                                        (d_dy, d_x, d_bias), the double-backward kernel

Each linear one is the transpose of another (tangent and backward of each other, backward_tangent's
is double_backward): _bias_act_gradient.py and _bias_act_second_order.py give the rules,
_bias_act_vmap.py the batching.
"""
import functools

from . import _bias_act_ffi
from ._auto_partitioning import auto_partitioned
from ._primitive import define, like, param_grad_like
from ._sharding import vary_alike


@functools.cache
def _ffi_call(op, act):
    return auto_partitioned(op, act=act)


def _forward(x, bias, *, act):
    return _ffi_call(_bias_act_ffi.forward, act)(x, bias)


def _tangent(x, bias, t_x, t_bias, *, act):
    return _ffi_call(_bias_act_ffi.backward, act)(t_x + t_bias, x, bias)[0]  # the backward kernel, dy = t_v


def _backward(dy, x, bias, *, act):
    return _ffi_call(_bias_act_ffi.backward, act)(dy, x, bias)


def _backward_tangent(t_dy, t_x, t_bias, dy, x, bias, *, act):
    dx, dbias = _ffi_call(_bias_act_ffi.backward, act)(t_dy, x, bias)
    _, d_x, d_bias = _ffi_call(_bias_act_ffi.double_backward, act)(t_x, t_bias, dy, x, bias)
    return dx + d_x, dbias + d_bias


def _double_backward(g, g_bias, dy, x, bias, *, act):
    return _ffi_call(_bias_act_ffi.double_backward, act)(g, g_bias, dy, x, bias)


def _like_x(x, *avals, act):
    return like(x)


def _with_param_grad(*avals, act):
    x, bias = avals[-2:]
    return like(x), param_grad_like(bias, x)


def _double_backward_types(*avals, act):
    x, bias = avals[-2:]
    return like(x), like(x), param_grad_like(bias, x)


forward_p = define("twinop_bias_act", _forward, _like_x, multiple_results=False)
tangent_p = define("twinop_bias_act_tangent", _tangent, _like_x, multiple_results=False)
backward_p = define("twinop_bias_act_backward", _backward, _with_param_grad, multiple_results=True)
backward_tangent_p = define("twinop_bias_act_backward_tangent", _backward_tangent, _with_param_grad,
                            multiple_results=True)
double_backward_p = define("twinop_bias_act_double_backward", _double_backward, _double_backward_types,
                           multiple_results=True)


def bind(primitive, *arrays, act):
    """primitive on arrays cast to vary alike over shard_map's manual axes, as JAX's own ops do."""
    out = primitive.bind(*vary_alike(*arrays), act=act)
    return tuple(out) if primitive.multiple_results else out
