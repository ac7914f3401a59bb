"""RMSNorm through every binding's ops (the numpy functions, torch.ops.twinop.*, twinop.torch's
differentiable entry points, twinop.tf's raw ops and its entry points with a tape, twinop.jax's FFI
calls and entry points), against the float64 reference (twinop.reference), on every dtype
(float16 and bfloat16 x with float32 weights too), odd shapes, non-contiguous and empty inputs and
NaN/Inf; with the same argument errors everywhere, inputs unchanged."""
import numpy as np
import pytest

from cases import DTYPE_PAIRS, RMS_NORM_ATTRS, SHAPES, make_rms_norm_inputs, round_to, rows_of
from tolerances import assert_close
from twinop import reference


def np_dtype(name):
    if name == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(name)


def compute_sum(x, residual, dtype):
    """s = x + residual as the kernels form it: in the compute type, rounded once to dtype."""
    compute = np.float64 if dtype == "float64" else np.float32
    return round_to((x.astype(compute) + residual.astype(compute)).astype(np.float64), dtype)


class Numpy:
    value_errors = (ValueError,)

    @staticmethod
    def float_attr(value):
        """eps or offset as the kernels receive it."""
        return value

    def __init__(self):
        import twinop.numpy as tn
        self.tn = tn

    def arrays(self, dtypes, *values):
        return [v.astype(np_dtype(d)) for v, d in zip(values, dtypes)]

    def forward(self, x, w, eps, offset, dtypes):
        xa, wa = self.arrays(dtypes, x, w)
        return {"y": self.tn.rms_norm(xa, wa, eps, offset=offset)}

    def add_forward(self, x, r, w, eps, offset, dtypes):
        xa, ra, wa = self.arrays((dtypes[0], dtypes[0], dtypes[1]), x, r, w)
        y, s = self.tn.add_rms_norm(xa, ra, wa, eps, offset=offset)
        return {"y": y, "s": s}

    def backward(self, dy, x, w, eps, offset, dtypes):
        dya, xa, wa = self.arrays((dtypes[0], dtypes[0], dtypes[1]), dy, x, w)
        dx, dweight = self.tn.rms_norm_backward(dya, xa, wa, eps, offset=offset)
        return {"dx": dx, "dweight": dweight}

    def dtype_name(self, a):
        return a.dtype.name

    def float64(self, a):
        return np.asarray(a).astype(np.float64)


class TorchOps:
    """torch.ops.twinop.*: the raw ops, rstd and all."""

    value_errors = (ValueError,)
    float_attr = staticmethod(Numpy.float_attr)

    def __init__(self):
        self.torch = pytest.importorskip("torch")
        pytest.importorskip("twinop.torch", exc_type=ImportError)
        self.ops = self.torch.ops.twinop

    def tensors(self, dtypes, *values):
        return [self.torch.tensor(v, dtype=getattr(self.torch, d)) for v, d in zip(values, dtypes)]

    def forward(self, x, w, eps, offset, dtypes):
        y, rstd = self.ops.rms_norm(*self.tensors(dtypes, x, w), eps, offset)
        return {"y": y, "rstd": rstd}

    def add_forward(self, x, r, w, eps, offset, dtypes):
        y, s, rstd = self.ops.add_rms_norm(*self.tensors((dtypes[0], dtypes[0], dtypes[1]), x, r, w), eps, offset)
        return {"y": y, "s": s, "rstd": rstd}

    def backward(self, dy, x, w, eps, offset, dtypes):
        dyt, xt, wt = self.tensors((dtypes[0], dtypes[0], dtypes[1]), dy, x, w)
        _, rstd = self.ops.rms_norm(xt, wt, eps, offset)
        dx, dweight = self.ops.rms_norm_backward(dyt, xt, rstd, wt, offset)
        return {"dx": dx, "dweight": dweight}

    def dtype_name(self, t):
        return str(t.dtype).removeprefix("torch.")

    def float64(self, t):
        return t.detach().to(self.torch.float64).numpy()


class TorchAutograd(TorchOps):
    """twinop.torch.rms_norm / add_rms_norm and torch.autograd.grad."""

    def __init__(self):
        super().__init__()
        import twinop.torch as tt
        self.tt = tt

    def forward(self, x, w, eps, offset, dtypes):
        return {"y": self.tt.rms_norm(*self.tensors(dtypes, x, w), eps, offset=offset)}

    def add_forward(self, x, r, w, eps, offset, dtypes):
        y, s = self.tt.add_rms_norm(*self.tensors((dtypes[0], dtypes[0], dtypes[1]), x, r, w), eps, offset=offset)
        return {"y": y, "s": s}

    def backward(self, dy, x, w, eps, offset, dtypes):
        dyt, xt, wt = self.tensors((dtypes[0], dtypes[0], dtypes[1]), dy, x, w)
        xt.requires_grad_(), wt.requires_grad_()
        y = self.tt.rms_norm(xt, wt, eps, offset=offset)
        dx, dweight = self.torch.autograd.grad(y, (xt, wt), dyt)
        return {"dx": dx, "dweight": dweight}


class TensorFlowOps:
    """twinop.tf's raw ops (Twinop>RmsNorm ...), rstd and all, eagerly. TensorFlow's float attrs
    are 32-bit: eps reaches the kernel as float32(eps), within float64's tolerance of eps here."""

    def __init__(self):
        self.tf = pytest.importorskip("tensorflow")
        self.ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)
        self.ops = self.ttf._ops
        self.value_errors = (self.tf.errors.InvalidArgumentError,)  # what the kernels raise

    @staticmethod
    def float_attr(value):
        return float(np.float32(value))  # a TensorFlow float attr

    def tensors(self, dtypes, *values):
        return [self.tf.cast(self.tf.constant(v, self.tf.float64), d) for v, d in zip(values, dtypes)]

    def rstd_dtype(self, dtypes):
        return self.tf.float64 if dtypes[0] == "float64" else self.tf.float32

    def forward(self, x, w, eps, offset, dtypes):
        y, rstd = self.ops.twinop_rms_norm(*self.tensors(dtypes, x, w), U=self.rstd_dtype(dtypes), eps=eps,
                                           offset=offset)
        return {"y": y, "rstd": rstd}

    def add_forward(self, x, r, w, eps, offset, dtypes):
        y, s, rstd = self.ops.twinop_add_rms_norm(*self.tensors((dtypes[0], dtypes[0], dtypes[1]), x, r, w),
                                                  U=self.rstd_dtype(dtypes), eps=eps, offset=offset)
        return {"y": y, "s": s, "rstd": rstd}

    def backward(self, dy, x, w, eps, offset, dtypes):
        dyt, xt, wt = self.tensors((dtypes[0], dtypes[0], dtypes[1]), dy, x, w)
        _, rstd = self.ops.twinop_rms_norm(xt, wt, U=self.rstd_dtype(dtypes), eps=eps, offset=offset)
        dx, dweight = self.ops.twinop_rms_norm_grad(dyt, xt, rstd, wt, offset=offset)
        return {"dx": dx, "dweight": dweight}

    def dtype_name(self, t):
        return t.dtype.name

    def float64(self, t):
        return self.tf.cast(t, self.tf.float64).numpy()


class TensorFlowTape(TensorFlowOps):
    """twinop.tf.rms_norm / add_rms_norm and tf.GradientTape, eagerly."""

    def forward(self, x, w, eps, offset, dtypes):
        return {"y": self.ttf.rms_norm(*self.tensors(dtypes, x, w), eps, offset=offset)}

    def add_forward(self, x, r, w, eps, offset, dtypes):
        y, s = self.ttf.add_rms_norm(*self.tensors((dtypes[0], dtypes[0], dtypes[1]), x, r, w), eps, offset=offset)
        return {"y": y, "s": s}

    def backward(self, dy, x, w, eps, offset, dtypes):
        dyt, xt, wt = self.tensors((dtypes[0], dtypes[0], dtypes[1]), dy, x, w)
        with self.tf.GradientTape() as tape:
            tape.watch([xt, wt])
            y = self.ttf.rms_norm(xt, wt, eps, offset=offset)
        dx, dweight = tape.gradient(y, [xt, wt], output_gradients=dyt)
        return {"dx": dx, "dweight": dweight}


class JaxFfi(Numpy):
    """twinop.jax's FFI calls (the targets, through their trace-time check): rstd and all. Its
    arrays read back as numpy's."""

    def __init__(self):
        self.jax = pytest.importorskip("jax")
        self.tj = pytest.importorskip("twinop.jax", exc_type=ImportError)
        from twinop.jax import _rms_norm_ffi

        self.ffi = _rms_norm_ffi
        # JAX's float64 on for each call alone: every array's dtype is explicit, and users run with it off.
        for name in ("forward", "add_forward", "backward"):
            setattr(self, name, self._float64(getattr(self, name)))

    def _float64(self, fn):
        def with_float64(*args):
            with self.jax.enable_x64(True):
                return fn(*args)

        return with_float64

    def arrays(self, dtypes, *values):
        return [self.jax.numpy.asarray(v.astype(np_dtype(d))) for v, d in zip(values, dtypes)]

    def forward(self, x, w, eps, offset, dtypes):
        y, rstd = self.ffi.rms_norm(*self.arrays(dtypes, x, w), eps=eps, offset=offset)
        return {"y": y, "rstd": rstd}

    def add_forward(self, x, r, w, eps, offset, dtypes):
        y, s, rstd = self.ffi.add_rms_norm(*self.arrays((dtypes[0], dtypes[0], dtypes[1]), x, r, w), eps=eps,
                                           offset=offset)
        return {"y": y, "s": s, "rstd": rstd}

    def backward(self, dy, x, w, eps, offset, dtypes):
        dya, xa, wa = self.arrays((dtypes[0], dtypes[0], dtypes[1]), dy, x, w)
        _, rstd = self.ffi.rms_norm(xa, wa, eps=eps, offset=offset)
        dx, dweight = self.ffi.rms_norm_backward(dya, xa, rstd, wa, offset=offset)
        return {"dx": dx, "dweight": dweight}


class Jax(JaxFfi):
    """twinop.jax.rms_norm / add_rms_norm under jax.jit, and jax.vjp."""

    def forward(self, x, w, eps, offset, dtypes):
        y = self.jax.jit(lambda x, w: self.tj.rms_norm(x, w, eps, offset=offset))(*self.arrays(dtypes, x, w))
        return {"y": y}

    def add_forward(self, x, r, w, eps, offset, dtypes):
        y, s = self.tj.add_rms_norm(*self.arrays((dtypes[0], dtypes[0], dtypes[1]), x, r, w), eps, offset=offset)
        return {"y": y, "s": s}

    def backward(self, dy, x, w, eps, offset, dtypes):
        dya, xa, wa = self.arrays((dtypes[0], dtypes[0], dtypes[1]), dy, x, w)
        _, pullback = self.jax.vjp(lambda x, w: self.tj.rms_norm(x, w, eps, offset=offset), xa, wa)
        dx, dweight = pullback(dya)
        return {"dx": dx, "dweight": dweight}


BINDINGS = {"numpy": Numpy, "torch ops": TorchOps, "torch autograd": TorchAutograd, "tensorflow ops": TensorFlowOps,
            "tensorflow tape": TensorFlowTape, "jax ffi": JaxFfi, "jax": Jax}
_loaded = {}


def binding(name):
    if name not in _loaded:
        _loaded[name] = BINDINGS[name]()
    return _loaded[name]


def expected(x, w, dy, eps, offset, dtype):
    y, rstd = reference.rms_norm(x, w, eps, offset)
    dx, dweight = reference.rms_norm_backward(dy, x, w, eps, offset)
    return {"y": y, "rstd": rstd, "dx": dx, "dweight": dweight}


def check(b, got, want, dtypes, rows):
    dtype, weight_dtype = dtypes
    compute = "float64" if dtype == "float64" else "float32"
    out_dtype = {"y": dtype, "s": dtype, "dx": dtype, "rstd": compute, "dweight": weight_dtype}
    for name, t in got.items():
        assert b.dtype_name(t) == out_dtype[name], f"{name}: dtype {b.dtype_name(t)}, want {out_dtype[name]}"
        # dweight sums products formed in the compute type: its bound is the compute type's unless
        # it is rounded to a half type
        tolerance = out_dtype[name] if name != "dweight" or weight_dtype != "float32" else compute
        assert_close(b.float64(t), want[name], tolerance, summed=rows if name == "dweight" else 1, what=name)


@pytest.mark.parametrize("eps,offset", RMS_NORM_ATTRS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids="-".join)
@pytest.mark.parametrize("name", BINDINGS)
def test_matches_reference(name, dtypes, shape, eps, offset):
    b = binding(name)
    x, w, dy, residual, ds = make_rms_norm_inputs(shape, *dtypes)
    want = expected(x, w, dy, b.float_attr(eps), b.float_attr(offset), dtypes[0])
    check(b, b.forward(x, w, eps, offset, dtypes), want, dtypes, rows_of(shape))
    check(b, b.backward(dy, x, w, eps, offset, dtypes), want, dtypes, rows_of(shape))
    s = compute_sum(x, residual, dtypes[0])
    want_add = {**expected(s, w, dy, b.float_attr(eps), b.float_attr(offset), dtypes[0]), "s": s}
    check(b, b.add_forward(x, residual, w, eps, offset, dtypes), want_add, dtypes, rows_of(shape))



VIEWS = {"transposed": lambda a: a.swapaxes(0, 1) if hasattr(a, "swapaxes") else a.transpose(0, 1),
         "every other column": lambda a: a[:, ::2], "every third row": lambda a: a[::3]}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("name", ["numpy", "torch ops"])
def test_non_contiguous_inputs(name, view):
    """Views straight into the ops: each binding reads them as they are (numpy arrays, torch
    tensors), not copies made by the test."""
    x, w, dy, residual, _ = make_rms_norm_inputs((40, 40), "float32", "float32")
    b = binding(name)
    make = (lambda a: a.astype(np.float32)) if name == "numpy" else (lambda a: b.torch.tensor(a, dtype=b.torch.float32))
    xv, dyv, rv = (VIEWS[view](make(a)) for a in (x, dy, residual))
    wv = make(w[: xv.shape[-1]])
    xf, dyf, rf, wf = (b.float64(a) for a in (xv, dyv, rv, wv))
    if name == "numpy":
        assert not xv.flags.c_contiguous
        got = {"y": b.tn.rms_norm(xv, wv, 1e-5)}
        got["dx"], got["dweight"] = b.tn.rms_norm_backward(dyv, xv, wv, 1e-5)
        y_add, s = b.tn.add_rms_norm(xv, rv, wv, 1e-5)
    else:
        assert not xv.is_contiguous()
        y, rstd = b.ops.rms_norm(xv, wv, 1e-5, 0.0)
        got = {"y": y, "rstd": rstd}
        got["dx"], got["dweight"] = b.ops.rms_norm_backward(dyv, xv, rstd, wv, 0.0)
        y_add, s, _ = b.ops.add_rms_norm(xv, rv, wv, 1e-5, 0.0)
    check(b, got, expected(xf, wf, dyf, 1e-5, 0.0, "float32"), ("float32", "float32"), xf.shape[0])
    s_want = compute_sum(xf, rf, "float32")
    check(b, {"y": y_add, "s": s}, {**expected(s_want, wf, dyf, 1e-5, 0.0, "float32"), "s": s_want},
          ("float32", "float32"), xf.shape[0])


@pytest.mark.parametrize("shape", [(0, 5), (4, 0), (0,), (2, 0, 3)], ids=str)
@pytest.mark.parametrize("name", BINDINGS)
def test_empty_inputs(name, shape):
    b = binding(name)
    x, w, dy, residual, _ = make_rms_norm_inputs(shape, "float32", "float32")
    dtypes = ("float32", "float32")
    got = {**b.forward(x, w, 1e-6, 0.0, dtypes), **b.backward(dy, x, w, 1e-6, 0.0, dtypes)}
    assert b.float64(got["y"]).shape == shape and b.float64(got["dx"]).shape == shape
    np.testing.assert_array_equal(b.float64(got["dweight"]), np.zeros(shape[-1:]))  # a sum of no rows
    assert b.float64(b.add_forward(x, residual, w, 1e-6, 0.0, dtypes)["s"]).shape == shape


# A row with NaN, one with +-Inf, one of zeros, and finite rows: what x * rsqrt(mean(x^2) + eps) * w
# gives in float64, rounded to the dtype.
SPECIAL_ROWS = np.array([[np.nan, 1.0, 2.0, -1.0], [np.inf, 1.0, -2.0, 0.5], [-np.inf, 0.0, 0.0, 3.0],
                         [0.0, 0.0, -0.0, 0.0], [1e-3, -2e-3, 5e-4, 0.0]])


@pytest.mark.parametrize("eps", [1e-6, 0.0])
@pytest.mark.parametrize("name", BINDINGS)
def test_nan_inf_and_zero_rows_as_the_native_composition(name, eps):
    """NaN and Inf spread through their row, as the composition's; a row of zeros with eps = 0 is
    0 / 0: NaN, as in the composition, and no crash."""
    b = binding(name)
    w = np.array([1.0, -0.5, 2.0, 0.25])
    dy = np.ones_like(SPECIAL_ROWS)
    want = expected(SPECIAL_ROWS, w, dy, b.float_attr(eps), 0.0, "float64")
    got = {**b.forward(SPECIAL_ROWS, w, eps, 0.0, ("float64", "float64")),
           **b.backward(dy, SPECIAL_ROWS, w, eps, 0.0, ("float64", "float64"))}
    for key in ("y", "dx"):
        np.testing.assert_array_equal(np.isnan(b.float64(got[key])), np.isnan(want[key]), err_msg=key)
        assert_close(b.float64(got[key]), want[key], "float64", what=key)
    assert np.isnan(want["y"][3]).all() == (eps == 0.0)


def test_numpy_out_and_in_place():
    import twinop.numpy as tn
    x, w, _, _, _ = make_rms_norm_inputs((7, 33), "float32", "float32")
    xa, wa = x.astype(np.float32), w.astype(np.float32)
    want = tn.rms_norm(xa, wa, 1e-5, offset=1.0)
    out = np.full_like(xa, np.nan)
    assert tn.rms_norm(xa, wa, 1e-5, offset=1.0, out=out) is out
    in_place = xa.copy()
    assert tn.rms_norm(in_place, wa, 1e-5, offset=1.0, out=in_place) is in_place
    assert out.tobytes() == want.tobytes() == in_place.tobytes()
    with pytest.raises(ValueError, match="out must not share memory with weight"):
        tn.rms_norm(np.ones((1, 33), np.float32), wa, out=wa.reshape(1, 33))
    with pytest.raises(TypeError, match="out must have the dtype of x"):
        tn.rms_norm(xa, wa, out=np.empty(xa.shape, np.float64))


def test_dweight_is_bit_identical_for_any_thread_count():
    import twinop.numpy as tn
    x, w, dy, _, _ = (a.astype(np.float32) for a in make_rms_norm_inputs((600, 301), "float32", "float32", seed=4))
    before = tn.get_num_threads()
    try:
        results = []
        for count in (1, 2, 3):
            tn.set_num_threads(count)
            results.append(tn.rms_norm_backward(dy, x, w))
    finally:
        tn.set_num_threads(before)
    for dx, dweight in results[1:]:
        assert dx.tobytes() == results[0][0].tobytes() and dweight.tobytes() == results[0][1].tobytes()


def test_wide_rows():
    """262,144 columns, where GPU anchors stop at 64K: one row is one chunk of work."""
    x, w, dy, _, _ = make_rms_norm_inputs((3, 262_144), "float32", "float32", seed=5)
    for name in BINDINGS:
        b = binding(name)
        want = expected(x, w, dy, b.float_attr(1e-6), 0.0, "float32")
        check(b, {**b.forward(x, w, 1e-6, 0.0, ("float32", "float32")),
                  **b.backward(dy, x, w, 1e-6, 0.0, ("float32", "float32"))}, want, ("float32", "float32"), 3)


F32 = dict(dtype="float32")
# (x shape and dtype, weight shape and dtype, eps, offset, error, words the message must contain)
BAD_INPUTS = {
    "weight of another length": ((2, 3), "float32", (4,), "float32", 1e-6, 0.0, ValueError, ["weight", "3", "4"]),
    "weight not 1-D": ((2, 3), "float32", (3, 1), "float32", 1e-6, 0.0, ValueError, ["weight", "1-D"]),
    "x of 0 dimensions": ((), "float32", (1,), "float32", 1e-6, 0.0, ValueError, ["x", "dimension"]),
    "float64 weight, float32 x": ((2, 3), "float32", (3,), "float64", 1e-6, 0.0, TypeError, ["weight", "dtype"]),
    "float32 weight, float64 x": ((2, 3), "float64", (3,), "float32", 1e-6, 0.0, TypeError, ["weight", "dtype"]),
    "float16 weight, bfloat16 x": ((2, 3), "bfloat16", (3,), "float16", 1e-6, 0.0, TypeError, ["weight", "float32"]),
    "integer x": ((2, 3), "int32", (3,), "float32", 1e-6, 0.0, TypeError, ["x", "float32, float64"]),
    "negative eps": ((2, 3), "float32", (3,), "float32", -1e-6, 0.0, ValueError, ["eps", ">= 0", "-1e-06"]),
    "NaN eps": ((2, 3), "float32", (3,), "float32", float("nan"), 0.0, ValueError, ["eps", "finite", "nan"]),
    "infinite eps": ((2, 3), "float32", (3,), "float32", float("inf"), 0.0, ValueError, ["eps", "finite"]),
    "infinite offset": ((2, 3), "float32", (3,), "float32", 1e-6, float("-inf"), ValueError, ["offset", "finite"]),
    "NaN offset": ((2, 3), "float32", (3,), "float32", 1e-6, float("nan"), ValueError, ["offset", "finite"]),
}


def _values(shape, dtype_name):
    return np.linspace(-1.0, 2.0, int(np.prod(shape)) or 1)[: int(np.prod(shape))].reshape(shape)


def _numpy_array(shape, dtype_name):
    return _values(shape, dtype_name).astype(np_dtype(dtype_name) if dtype_name != "int32" else np.int32)


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_numpy_refuses_bad_input_and_leaves_inputs_unchanged(case):
    import twinop.numpy as tn
    x_shape, x_dtype, w_shape, w_dtype, eps, offset, error, words = BAD_INPUTS[case]
    x, w = _numpy_array(x_shape, x_dtype), _numpy_array(w_shape, w_dtype)
    before = x.tobytes(), w.tobytes()
    calls = [lambda: tn.rms_norm(x, w, eps, offset=offset), lambda: tn.rms_norm_backward(x, x, w, eps, offset=offset),
             lambda: tn.add_rms_norm(x, x, w, eps, offset=offset)]
    for call in calls:
        with pytest.raises(error) as info:
            call()
        assert all(word in str(info.value) for word in words), str(info.value)
    assert (x.tobytes(), w.tobytes()) == before


def _torch_tensor(torch, shape, dtype_name):
    return torch.tensor(_values(shape, dtype_name), dtype=getattr(torch, dtype_name))


def raw_op_error(tt, error):
    """What the raw ops raise where the entry points raise `error`: the same on the classic
    library, RuntimeError on the stable-ABI one (its C++ can raise no other type)."""
    return error if tt.ABI == "classic" else RuntimeError


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_torch_refuses_bad_input_with_one_message(case):
    """twinop.torch.rms_norm checks in Python (_checks.py), the ops in C++ (rms_norm_args.h): the
    same text, the inputs unchanged."""
    b = binding("torch autograd")
    torch, tt, ops = b.torch, b.tt, b.ops
    x_shape, x_dtype, w_shape, w_dtype, eps, offset, error, words = BAD_INPUTS[case]
    x, w = _torch_tensor(torch, x_shape, x_dtype), _torch_tensor(torch, w_shape, w_dtype)
    before = x.clone(), w.clone()
    calls = [(lambda: tt.rms_norm(x, w, eps, offset=offset), error),
             (lambda: tt.add_rms_norm(x, x, w, eps, offset=offset), error),
             (lambda: ops.rms_norm(x, w, eps, offset), raw_op_error(tt, error)),
             (lambda: ops.add_rms_norm(x, x, w, eps, offset), raw_op_error(tt, error))]
    if w.dim() == 1:  # the module makes its own weight of this shape and dtype
        calls.append((lambda: tt.RMSNorm(w.shape[0], eps, offset=offset, dtype=w.dtype)(x), error))
    messages = []
    for call, raised in calls:
        with pytest.raises(raised) as info:
            call()
        assert all(word in str(info.value) for word in words), str(info.value)
        messages.append(str(info.value))
    assert len(set(messages)) == 1, messages
    assert torch.equal(x, before[0]) and torch.equal(w, before[1])


@pytest.mark.parametrize("name", BINDINGS)
def test_residual_of_another_shape_or_dtype(name):
    b = binding(name)
    x, w, _, _, _ = make_rms_norm_inputs((2, 3), "float32", "float32")
    raised = b.value_errors
    if name == "torch ops":  # binding() has imported twinop.torch
        import twinop.torch as tt
        raised = raw_op_error(tt, ValueError)
    with pytest.raises(raised, match=r"residual must have the shape of x \[2, 3\]; got \[2, 4\]"):
        b.add_forward(x, np.ones((2, 4)), w, 1e-6, 0.0, ("float32", "float32"))
