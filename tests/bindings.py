"""Every binding as a small adapter, so the property, thread, leak and hostile-argument tests run
each op form of each binding the same way. A binding is one entry of BINDINGS: how it makes its
tensors from float64 numpy values and back, its three view operations (transpose, strided slice,
broadcast) and its calls.

A call runs one op form (the raw op, an out= form, an autodiff layer, a vmap) of one op on the
binding's tensors and names what it returns (bias_act: y, dx, dbias, d_dy, d_x, d_bias; rms_norm
and add_rms_norm: y, s, rstd, dx, dweight; or a per-example sum under vmap); the tests compute the
same names from the float64 reference. tests/op_specs.py says what each op takes."""
import dataclasses
import importlib
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest

from cases import numpy_dtype


@dataclasses.dataclass(frozen=True)
class Call:
    fn: Callable  # fn(inputs, attrs) -> tuple of the binding's tensors; inputs: the op's (op_specs.py)
    outputs: tuple  # the names of what fn returns, in order
    same_bits_as: str = ""  # an out= form: the allocating call whose bits it must reproduce
    min_ndim: int = 1  # vmap maps over a first axis
    zero_g_bias: bool = False  # the call passes no g_bias: the reference takes zeros
    op: str = "bias_act"  # which op: its inputs and attributes (act; eps and offset) in op_specs.py


FORWARD = ("y",)
BACKWARD = ("dx", "dbias")
DOUBLE_BACKWARD = ("d_dy", "d_x", "d_bias")
RMS_BACKWARD = ("dx", "dweight")


def rms_norm(fn, outputs, **kwargs):
    return Call(fn, outputs, op="rms_norm", **kwargs)


def add_rms_norm(fn, outputs, **kwargs):
    return Call(fn, outputs, op="add_rms_norm", **kwargs)


def nan_like(array):
    """A fresh C-contiguous numpy array shaped and typed like `array`, full of NaN: whatever an
    out= form leaves unwritten shows."""
    return np.full(array.shape, np.nan, array.dtype)


class NumpyBinding:
    name = "numpy"
    flushes_subnormals = False

    def load(self):
        self.tn = importlib.import_module("twinop.numpy")
        tn = self.tn
        self.calls = {
            "bias_act": Call(lambda i, act: (tn.bias_act(i.x, i.bias, act),), FORWARD),
            "bias_act out=": Call(self._forward_out, FORWARD, same_bits_as="bias_act"),
            "bias_act out=x": Call(self._forward_in_place, FORWARD, same_bits_as="bias_act"),
            "bias_act_backward": Call(lambda i, act: tn.bias_act_backward(i.dy, i.x, i.bias, act), BACKWARD),
            "bias_act_backward out=": Call(lambda i, act: self._backward_out(i, act, None), BACKWARD,
                                           same_bits_as="bias_act_backward"),
            "bias_act_backward out=(dy, .)": Call(lambda i, act: self._backward_out(i, act, "dy"), BACKWARD,
                                                  same_bits_as="bias_act_backward"),
            "bias_act_backward out=(x, .)": Call(lambda i, act: self._backward_out(i, act, "x"), BACKWARD,
                                                 same_bits_as="bias_act_backward"),
            "bias_act_double_backward": Call(
                lambda i, act: tn.bias_act_double_backward(i.g, i.dy, i.x, i.bias, act, g_bias=i.g_bias),
                DOUBLE_BACKWARD),
            "bias_act_double_backward g_bias=None": Call(
                lambda i, act: tn.bias_act_double_backward(i.g, i.dy, i.x, i.bias, act), DOUBLE_BACKWARD,
                zero_g_bias=True),
            "rms_norm": rms_norm(lambda i, a: (tn.rms_norm(i.x, i.weight, a.eps, offset=a.offset),), FORWARD),
            "rms_norm out=": rms_norm(self._rms_norm_out, FORWARD, same_bits_as="rms_norm"),
            "rms_norm out=x": rms_norm(self._rms_norm_in_place, FORWARD, same_bits_as="rms_norm"),
            "rms_norm_backward": rms_norm(lambda i, a: tn.rms_norm_backward(i.dy, i.x, i.weight, a.eps,
                                                                            offset=a.offset), RMS_BACKWARD),
            "add_rms_norm": add_rms_norm(lambda i, a: tn.add_rms_norm(i.x, i.residual, i.weight, a.eps,
                                                                      offset=a.offset), ("y", "s")),
        }
        return self

    def _rms_norm_out(self, i, a):
        out = nan_like(i.x)
        assert self.tn.rms_norm(i.x, i.weight, a.eps, offset=a.offset, out=out) is out
        return (out,)

    def _rms_norm_in_place(self, i, a):
        x = np.array(i.x, order="C")
        assert self.tn.rms_norm(x, i.weight, a.eps, offset=a.offset, out=x) is x
        return (x,)

    def _forward_out(self, i, act):
        out = nan_like(i.x)
        assert self.tn.bias_act(i.x, i.bias, act, out=out) is out
        return (out,)

    def _forward_in_place(self, i, act):
        x = np.array(i.x, order="C")  # a writeable, contiguous copy, overwritten by y
        assert self.tn.bias_act(x, i.bias, act, out=x) is x
        return (x,)

    def _backward_out(self, i, act, dx_into):
        dy, x = (np.array(i.dy, order="C"), np.array(i.x, order="C")) if dx_into else (i.dy, i.x)
        dx = {"dy": dy, "x": x, None: nan_like(i.x)}[dx_into]
        dbias = nan_like(i.bias)
        got = self.tn.bias_act_backward(dy, x, i.bias, act, out=(dx, dbias))
        assert got[0] is dx and got[1] is dbias
        return dx, dbias

    def tensor(self, values, dtype):
        return values.astype(numpy_dtype(dtype))

    def to_float64(self, t):
        return np.asarray(t).astype(np.float64)

    def dtype_name(self, t):
        return t.dtype.name

    def bits(self, t):
        return np.ascontiguousarray(t).tobytes()

    def transpose(self, t):
        return np.swapaxes(t, -1, -2)

    def slice(self, t, index):
        return t[index]

    def broadcast(self, t, shape):
        return np.broadcast_to(t, shape)


class TorchBinding:
    name = "torch"
    flushes_subnormals = False

    def load(self):
        self.torch = pytest.importorskip("torch")
        self.tt = pytest.importorskip("twinop.torch", exc_type=ImportError)  # not built: skip
        # What a bad argument raises: the stable-ABI library's C++ can raise only RuntimeError
        # (its raw ops); twinop.torch.bias_act checks first and raises ValueError either way.
        self.argument_errors = (ValueError,) if self.tt.ABI == "classic" else (ValueError, RuntimeError)
        ops, tt = self.torch.ops.twinop, self.tt
        self.calls = {
            "ops.bias_act": Call(lambda i, act: (ops.bias_act(i.x, i.bias, act),), FORWARD),
            "ops.bias_act_backward": Call(lambda i, act: ops.bias_act_backward(i.dy, i.x, i.bias, act), BACKWARD),
            "ops.bias_act_double_backward": Call(
                lambda i, act: ops.bias_act_double_backward(i.g, i.g_bias, i.dy, i.x, i.bias, act), DOUBLE_BACKWARD),
            "bias_act": Call(lambda i, act: (tt.bias_act(i.x, i.bias, act),), FORWARD),
            "bias_act autograd": Call(self._autograd, FORWARD + BACKWARD),
            "bias_act autograd 2nd order": Call(self._autograd_second_order, DOUBLE_BACKWARD),
            "bias_act out=": Call(lambda i, act: (self._forward_out(i, act, self._nan_like(i.x)),),
                                  FORWARD, same_bits_as="ops.bias_act"),
            "bias_act out=x": Call(lambda i, act: (self._forward_out(i, act, None),), FORWARD,
                                   same_bits_as="ops.bias_act"),
            "ops.bias_act_backward.out": Call(lambda i, act: self._backward_out(i, act, None), BACKWARD,
                                              same_bits_as="ops.bias_act_backward"),
            "ops.bias_act_backward.out dx=dy": Call(lambda i, act: self._backward_out(i, act, "dy"), BACKWARD,
                                                    same_bits_as="ops.bias_act_backward"),
            "ops.bias_act_backward.out dx=x": Call(lambda i, act: self._backward_out(i, act, "x"), BACKWARD,
                                                   same_bits_as="ops.bias_act_backward"),
            # vmap over the first axis, bias batched too (expanded per example): the batching rules.
            "vmap ops.bias_act": Call(self._vmap_forward, FORWARD, min_ndim=2),
            "vmap ops.bias_act_backward": Call(self._vmap_backward, ("dx", "dbias per example"), min_ndim=2),
            "vmap ops.bias_act_double_backward": Call(self._vmap_double_backward,
                                                      ("d_dy", "d_x", "d_bias per example"), min_ndim=2),
            "ops.rms_norm": rms_norm(lambda i, a: ops.rms_norm(i.x, i.weight, a.eps, a.offset), ("y", "rstd")),
            "ops.rms_norm_backward": rms_norm(self._rms_norm_backward_op, RMS_BACKWARD),
            "ops.add_rms_norm": add_rms_norm(lambda i, a: ops.add_rms_norm(i.x, i.residual, i.weight, a.eps,
                                                                           a.offset), ("y", "s", "rstd")),
            "ops.add_rms_norm_backward": add_rms_norm(self._add_rms_norm_backward_op, RMS_BACKWARD),
            "rms_norm": rms_norm(lambda i, a: (tt.rms_norm(i.x, i.weight, a.eps, offset=a.offset),), FORWARD),
            "add_rms_norm": add_rms_norm(lambda i, a: tt.add_rms_norm(i.x, i.residual, i.weight, a.eps,
                                                                      offset=a.offset), ("y", "s")),
            "rms_norm autograd": rms_norm(self._rms_norm_autograd, FORWARD + RMS_BACKWARD),
            "add_rms_norm autograd": add_rms_norm(self._add_rms_norm_autograd, ("y", "s") + RMS_BACKWARD),
            # vmap over the first axis, weight batched too (expanded per example): the batching rules.
            "vmap ops.rms_norm": rms_norm(self._vmap_rms_norm, ("y", "rstd"), min_ndim=2),
            "vmap ops.rms_norm_backward": rms_norm(self._vmap_rms_norm_backward, ("dx", "dweight per example"),
                                                   min_ndim=2),
        }
        return self

    def _rms_norm_backward_op(self, i, a):
        ops = self.torch.ops.twinop
        _, rstd = ops.rms_norm(i.x, i.weight, a.eps, a.offset)
        return ops.rms_norm_backward(i.dy, i.x, rstd, i.weight, a.offset)

    def _add_rms_norm_backward_op(self, i, a):
        ops = self.torch.ops.twinop
        _, s, rstd = ops.add_rms_norm(i.x, i.residual, i.weight, a.eps, a.offset)
        return ops.add_rms_norm_backward(i.dy, i.ds, s, rstd, i.weight, a.offset)

    def _rms_norm_autograd(self, i, a):
        x, weight = self._leaf(i.x), self._leaf(i.weight)
        y = self.tt.rms_norm(x, weight, a.eps, offset=a.offset)
        return (y, *self.torch.autograd.grad(y, (x, weight), i.dy))

    def _add_rms_norm_autograd(self, i, a):
        x, residual, weight = self._leaf(i.x), self._leaf(i.residual), self._leaf(i.weight)
        y, s = self.tt.add_rms_norm(x, residual, weight, a.eps, offset=a.offset)
        dx, d_residual, dweight = self.torch.autograd.grad((y, s), (x, residual, weight), (i.dy, i.ds))
        assert self.bits(dx) == self.bits(d_residual)  # s = x + residual: one gradient
        return y, s, dx, dweight

    def _vmap_rms_norm(self, i, a):
        f = lambda x, w: self.torch.ops.twinop.rms_norm(x, w, a.eps, a.offset)  # noqa: E731
        return self.torch.func.vmap(f)(i.x, self._per_example(i.weight, i.x))

    def _vmap_rms_norm_backward(self, i, a):
        ops = self.torch.ops.twinop
        _, rstd = ops.rms_norm(i.x, i.weight, a.eps, a.offset)
        f = lambda dy, x, r, w: ops.rms_norm_backward(dy, x, r, w, a.offset)  # noqa: E731
        return self.torch.func.vmap(f)(i.dy, i.x, rstd, self._per_example(i.weight, i.x))

    def _nan_like(self, t):
        """A contiguous tensor shaped and typed like t, full of NaN (full_like would copy t's strides)."""
        return self.torch.full(t.shape, float("nan"), dtype=t.dtype)

    def _leaf(self, t):
        return t.detach().requires_grad_()

    def _autograd(self, i, act):
        x, bias = self._leaf(i.x), self._leaf(i.bias)
        y = self.tt.bias_act(x, bias, act)
        dx, dbias = self.torch.autograd.grad(y, (x, bias), i.dy)
        return y, dx, dbias

    def _autograd_second_order(self, i, act):
        dy, x, bias = self._leaf(i.dy), self._leaf(i.x), self._leaf(i.bias)
        y = self.tt.bias_act(x, bias, act)
        dx, dbias = self.torch.autograd.grad(y, (x, bias), dy, create_graph=True)
        return self.torch.autograd.grad((dx, dbias), (dy, x, bias), (i.g, i.g_bias))

    def _forward_out(self, i, act, out):
        x = i.x if out is not None else i.x.contiguous().clone()
        out = x if out is None else out
        assert self.tt.bias_act(x, i.bias, act, out=out) is out
        return out

    def _backward_out(self, i, act, dx_into):
        dy, x = (i.dy.contiguous().clone(), i.x.contiguous().clone()) if dx_into else (i.dy, i.x)
        dx = {"dy": dy, "x": x, None: self._nan_like(i.x)}[dx_into]
        dbias = self._nan_like(i.bias)
        got = self.torch.ops.twinop.bias_act_backward.out(dy, x, i.bias, act, dx=dx, dbias=dbias)
        assert got[0] is dx and got[1] is dbias
        return dx, dbias

    def _per_example(self, row, like):
        return row.expand(like.shape[0], row.shape[0])

    def _vmap_forward(self, i, act):
        f = lambda x, bias: self.torch.ops.twinop.bias_act(x, bias, act)  # noqa: E731
        return (self.torch.func.vmap(f)(i.x, self._per_example(i.bias, i.x)),)

    def _vmap_backward(self, i, act):
        f = lambda dy, x, bias: self.torch.ops.twinop.bias_act_backward(dy, x, bias, act)  # noqa: E731
        return self.torch.func.vmap(f)(i.dy, i.x, self._per_example(i.bias, i.x))

    def _vmap_double_backward(self, i, act):
        f = lambda g, g_bias, dy, x, bias: self.torch.ops.twinop.bias_act_double_backward(  # noqa: E731
            g, g_bias, dy, x, bias, act)
        rows = lambda t: self._per_example(t, i.x)  # noqa: E731
        return self.torch.func.vmap(f)(i.g, rows(i.g_bias), i.dy, i.x, rows(i.bias))

    def tensor(self, values, dtype):
        return self.torch.tensor(values, dtype=getattr(self.torch, dtype))

    def to_float64(self, t):
        return t.detach().to(self.torch.float64).numpy()

    def dtype_name(self, t):
        return str(t.dtype).removeprefix("torch.")

    def bits(self, t):
        if t.numel() == 0:  # may have stride 0, which view() refuses
            return b""
        return t.detach().clone(memory_format=self.torch.contiguous_format).view(self.torch.uint8).numpy().tobytes()

    def transpose(self, t):
        return t.transpose(-1, -2)

    def slice(self, t, index):
        return t[index]

    def broadcast(self, t, shape):
        return t.expand(shape)


class TensorFlowBinding:
    name = "tensorflow"
    flushes_subnormals = True  # TensorFlow's CPU ops run with subnormals flushed to zero (FTZ, DAZ)
    float32_attrs = True  # TensorFlow's float attrs are 32-bit: RMSNorm's eps and offset reach the kernels so

    def load(self):
        self.tf = pytest.importorskip("tensorflow")
        self.ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)
        ops = self.ttf._ops
        raw = {  # name: (fn, what it returns, the inputs a tf.function of it takes, its op)
            "BiasAct": (lambda i, act: (ops.twinop_bias_act(i.x, i.bias, act=act),), FORWARD, ("x", "bias"),
                        "bias_act"),
            "BiasActGrad": (lambda i, act: tuple(ops.twinop_bias_act_grad(i.dy, i.x, i.bias, act=act)), BACKWARD,
                            ("dy", "x", "bias"), "bias_act"),
            "BiasActGradGrad": (lambda i, act: tuple(ops.twinop_bias_act_grad_grad(i.g, i.g_bias, i.dy, i.x, i.bias,
                                                                                   act=act)),
                                DOUBLE_BACKWARD, ("g", "g_bias", "dy", "x", "bias"), "bias_act"),
            "bias_act + tape": (self._tape, FORWARD + BACKWARD, ("dy", "x", "bias"), "bias_act"),
            "bias_act + nested tapes": (self._nested_tapes, DOUBLE_BACKWARD, ("g", "g_bias", "dy", "x", "bias"),
                                        "bias_act"),
            "RmsNorm": (lambda i, a: tuple(self._rms_norm_op(i, a)), ("y", "rstd"), ("x", "weight"), "rms_norm"),
            "AddRmsNorm": (lambda i, a: tuple(self._add_rms_norm_op(i, a)), ("y", "s", "rstd"),
                           ("x", "residual", "weight"), "add_rms_norm"),
            "RmsNormGrad": (self._rms_norm_grad_op, RMS_BACKWARD, ("dy", "x", "weight"), "rms_norm"),
            "AddRmsNormGrad": (self._add_rms_norm_grad_op, RMS_BACKWARD, ("dy", "ds", "x", "residual", "weight"),
                               "add_rms_norm"),
            "rms_norm + tape": (self._rms_norm_tape, FORWARD + RMS_BACKWARD, ("dy", "x", "weight"), "rms_norm"),
            # d_residual is dx (s = x + residual): both are held to dx's reference.
            "add_rms_norm + tape": (self._add_rms_norm_tape, ("y", "s", "dx", "dx", "dweight"),
                                    ("dy", "ds", "x", "residual", "weight"), "add_rms_norm"),
        }
        self._functions = {}
        self.calls = {}
        for name, (fn, outputs, inputs, op) in raw.items():
            self.calls[f"{name} eager"] = Call(fn, outputs, op=op)
            self.calls[f"{name} tf.function"] = Call(self._in_function(name, fn, inputs), outputs, op=op)
        return self

    def _rstd_dtype(self, x):
        return self.tf.float64 if x.dtype == self.tf.float64 else self.tf.float32

    def _rms_norm_op(self, i, a):
        return self.ttf._ops.twinop_rms_norm(i.x, i.weight, U=self._rstd_dtype(i.x), eps=a.eps, offset=a.offset)

    def _add_rms_norm_op(self, i, a):
        return self.ttf._ops.twinop_add_rms_norm(i.x, i.residual, i.weight, U=self._rstd_dtype(i.x), eps=a.eps,
                                                 offset=a.offset)

    def _rms_norm_grad_op(self, i, a):
        _, rstd = self._rms_norm_op(i, a)
        return tuple(self.ttf._ops.twinop_rms_norm_grad(i.dy, i.x, rstd, i.weight, offset=a.offset))

    def _add_rms_norm_grad_op(self, i, a):
        _, s, rstd = self._add_rms_norm_op(i, a)
        return tuple(self.ttf._ops.twinop_add_rms_norm_grad(i.dy, i.ds, s, rstd, i.weight, offset=a.offset))

    def _rms_norm_tape(self, i, a):
        with self.tf.GradientTape() as tape:
            tape.watch([i.x, i.weight])
            y = self.ttf.rms_norm(i.x, i.weight, a.eps, offset=a.offset)
        return (y, *tape.gradient(y, [i.x, i.weight], output_gradients=i.dy))

    def _add_rms_norm_tape(self, i, a):
        with self.tf.GradientTape() as tape:
            tape.watch([i.x, i.residual, i.weight])
            y, s = self.ttf.add_rms_norm(i.x, i.residual, i.weight, a.eps, offset=a.offset)
        return (y, s, *tape.gradient([y, s], [i.x, i.residual, i.weight], output_gradients=[i.dy, i.ds]))

    def _tape(self, i, act):
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch([i.x, i.bias])
            y = self.ttf.bias_act(i.x, i.bias, act)
        return (y, *tape.gradient(y, [i.x, i.bias], output_gradients=i.dy))

    def _nested_tapes(self, i, act):
        tf = self.tf
        with tf.GradientTape() as outer:
            outer.watch([i.dy, i.x, i.bias])
            with tf.GradientTape() as inner:
                inner.watch([i.x, i.bias])
                y = self.ttf.bias_act(i.x, i.bias, act)
            dx, dbias = inner.gradient(y, [i.x, i.bias], output_gradients=i.dy)
        return tuple(outer.gradient([dx, dbias], [i.dy, i.x, i.bias], output_gradients=[i.g, i.g_bias]))

    def _in_function(self, name, fn, input_names):
        """fn in a tf.function of any input shape, one trace per input dtypes and attributes (act;
        eps and offset)."""
        tf = self.tf

        def call(i, attrs):
            args = [getattr(i, n) for n in input_names]
            key = (name, tuple(t.dtype for t in args), attrs)
            if key not in self._functions:
                spec = [tf.TensorSpec(None, t.dtype) for t in args]
                self._functions[key] = tf.function(
                    lambda *args: fn(SimpleNamespace(**dict(zip(input_names, args))), attrs), input_signature=spec)
            return self._functions[key](*args)

        return call

    def tensor(self, values, dtype):
        return self.tf.cast(self.tf.constant(values, self.tf.float64), dtype)

    def to_float64(self, t):
        return self.tf.cast(t, self.tf.float64).numpy()

    def dtype_name(self, t):
        return t.dtype.name

    def bits(self, t):
        return t.numpy().tobytes()

    def transpose(self, t):
        return self.tf.linalg.matrix_transpose(t)

    def slice(self, t, index):
        return t[index]

    def broadcast(self, t, shape):
        return self.tf.broadcast_to(t, shape)


class JaxBinding:
    name = "jax"
    flushes_subnormals = True  # XLA:CPU runs the handlers with subnormals flushed to zero, as TensorFlow's ops

    def load(self):
        self.jax = pytest.importorskip("jax")
        self.tj = pytest.importorskip("twinop.jax", exc_type=ImportError)
        from twinop.jax import _bias_act_ffi, _rms_norm_ffi

        jax, tj, ffi = self.jax, self.tj, _rms_norm_ffi
        self.ffi = ffi
        calls = {
            "ffi forward": Call(lambda i, act: (_bias_act_ffi.forward(i.x, i.bias, act=act),), FORWARD),
            "ffi backward": Call(lambda i, act: _bias_act_ffi.backward(i.dy, i.x, i.bias, act=act), BACKWARD),
            "ffi double backward": Call(lambda i, act: _bias_act_ffi.double_backward(
                i.g, i.g_bias, i.dy, i.x, i.bias, act=act), DOUBLE_BACKWARD),
            "bias_act": Call(lambda i, act: (tj.bias_act(i.x, i.bias, act),), FORWARD),
            "bias_act vjp": Call(self._vjp, FORWARD + BACKWARD),
            "bias_act vjp of vjp": Call(self._second_order, DOUBLE_BACKWARD),
            # vmap over the first axis, bias batched too (one row per example): the batching rules.
            "vmap bias_act": Call(lambda i, act: (jax.vmap(lambda x, b: tj.bias_act(x, b, act))(
                i.x, self._per_example(i.bias, i.x)),), FORWARD, min_ndim=2),
            "vmap bias_act vjp": Call(self._vmap_vjp, ("dx", "dbias per example"), min_ndim=2),
            "ffi rms_norm": rms_norm(lambda i, a: ffi.rms_norm(i.x, i.weight, eps=a.eps, offset=a.offset),
                                     ("y", "rstd")),
            "ffi rms_norm_backward": rms_norm(self._ffi_rms_norm_backward, RMS_BACKWARD),
            "ffi add_rms_norm": add_rms_norm(lambda i, a: ffi.add_rms_norm(i.x, i.residual, i.weight, eps=a.eps,
                                                                           offset=a.offset), ("y", "s", "rstd")),
            "ffi add_rms_norm_backward": add_rms_norm(self._ffi_add_rms_norm_backward, RMS_BACKWARD),
            "rms_norm vjp": rms_norm(self._rms_norm_vjp, FORWARD + RMS_BACKWARD),
            "add_rms_norm vjp": add_rms_norm(self._add_rms_norm_vjp, ("y", "s") + RMS_BACKWARD),
            # vmap over the first axis, weight batched too (one row per example): the batching rules.
            "vmap rms_norm vjp": rms_norm(self._vmap_rms_norm_vjp, ("y", "dx", "dweight per example"), min_ndim=2),
        }
        self.calls = {name: dataclasses.replace(call, fn=self._float64(call.fn)) for name, call in calls.items()}
        return self

    def _float64(self, fn):
        """fn with JAX's float64 on for its call alone: every array's dtype is explicit, and users
        (and the other tests) run with it off."""
        def with_float64(*args):
            with self.jax.enable_x64(True):
                return fn(*args)

        return with_float64

    def _ffi_rms_norm_backward(self, i, a):
        _, rstd = self.ffi.rms_norm(i.x, i.weight, eps=a.eps, offset=a.offset)
        return self.ffi.rms_norm_backward(i.dy, i.x, rstd, i.weight, offset=a.offset)

    def _ffi_add_rms_norm_backward(self, i, a):
        _, s, rstd = self.ffi.add_rms_norm(i.x, i.residual, i.weight, eps=a.eps, offset=a.offset)
        return self.ffi.add_rms_norm_backward(i.dy, i.ds, s, rstd, i.weight, offset=a.offset)

    def _rms_norm_vjp(self, i, a):
        y, pullback = self.jax.vjp(lambda x, w: self.tj.rms_norm(x, w, a.eps, offset=a.offset), i.x, i.weight)
        return (y, *pullback(i.dy))

    def _add_rms_norm_vjp(self, i, a):
        (y, s), pullback = self.jax.vjp(lambda x, r, w: self.tj.add_rms_norm(x, r, w, a.eps, offset=a.offset),
                                        i.x, i.residual, i.weight)
        dx, d_residual, dweight = pullback((i.dy, i.ds))
        assert self.bits(dx) == self.bits(d_residual)  # s = x + residual: one gradient
        return y, s, dx, dweight

    def _vmap_rms_norm_vjp(self, i, a):
        def per_example(dy, x, w):
            y, pullback = self.jax.vjp(lambda x, w: self.tj.rms_norm(x, w, a.eps, offset=a.offset), x, w)
            return (y, *pullback(dy))

        return self.jax.vmap(per_example)(i.dy, i.x, self._per_example(i.weight, i.x))

    def _vjp(self, i, act):
        y, pullback = self.jax.vjp(lambda x, bias: self.tj.bias_act(x, bias, act), i.x, i.bias)
        return (y, *pullback(i.dy))

    def _second_order(self, i, act):
        def backward(dy, x, bias):
            return self.jax.vjp(lambda x, bias: self.tj.bias_act(x, bias, act), x, bias)[1](dy)

        _, pullback = self.jax.vjp(backward, i.dy, i.x, i.bias)
        return pullback((i.g, i.g_bias))

    def _vmap_vjp(self, i, act):
        def per_example(dy, x, bias):
            return self.jax.vjp(lambda x, bias: self.tj.bias_act(x, bias, act), x, bias)[1](dy)

        return self.jax.vmap(per_example)(i.dy, i.x, self._per_example(i.bias, i.x))

    def _per_example(self, row, like):
        return self.jax.numpy.broadcast_to(row, (like.shape[0], row.shape[0]))

    def tensor(self, values, dtype):
        return self._float64(self.jax.numpy.asarray)(values.astype(numpy_dtype(dtype)))

    def to_float64(self, t):
        return np.asarray(t).astype(np.float64)

    def dtype_name(self, t):
        return t.dtype.name

    def bits(self, t):
        return np.asarray(t).tobytes()

    def transpose(self, t):  # JAX arrays have no strided views: these are copies in a new layout
        return self._float64(self.jax.numpy.swapaxes)(t, -1, -2)

    def slice(self, t, index):
        return self._float64(t.__getitem__)(index)

    def broadcast(self, t, shape):
        return self._float64(self.jax.numpy.broadcast_to)(t, shape)


# The stable-ABI PyTorch library is TorchBinding on TWINOP_TORCH_ABI=stable (tests/test_torch_stable.py).
BINDINGS = {"numpy": NumpyBinding, "torch": TorchBinding, "tensorflow": TensorFlowBinding, "jax": JaxBinding}


def load(name):
    """The binding's adapter, loaded once per process (skips the test if it was not built)."""
    if name not in _loaded:
        _loaded[name] = BINDINGS[name]().load()
    return _loaded[name]


_loaded = {}


def calls():
    """[(binding name, call name)] of every binding that loads here, for pytest.mark.parametrize;
    a binding that was not built gives one (name, None), which the test skips."""
    params = []
    for name in BINDINGS:
        try:
            params += [(name, call) for call in load(name).calls]
        except pytest.skip.Exception:
            params.append((name, None))
    return params
