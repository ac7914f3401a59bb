"""Property tests: every call of every binding (tests/bindings.py) on inputs nobody chose by hand,
against the float64 reference, with the inputs checked unchanged afterwards.

hypothesis draws the dtype, the activation, the shape (0 and 1 sizes, prime and vector-width-
misaligned last dimensions, up to 4-D), each tensor's layout (dense, transposed, strided with
steps, broadcast; the bias too) and the values (moderate, the dtype's whole range, subnormals,
+-0, +-Inf, NaN, the largest finite values). The example counts come from the hypothesis profile
(tests/conftest.py): `ci` by default, `--hypothesis-profile=thorough` for many more.

What the reference means at the edges, as the kernels define it (README, Reliability):
- Each result is compared with the reference rounded once to the output dtype: a result whose
  exact value lies past the dtype's largest finite value is +-Inf, as IEEE rounding makes it
  (and either, within tolerance of that threshold).
- x + bias (and g + g_bias) is formed in the compute type, float32 for float32, float16 and
  bfloat16 inputs: past float32's range it is +-Inf, and the activation's formula is evaluated
  there (NaN where the formula gives 0 * Inf), as the native composition act(x + b) does.
- TensorFlow runs its CPU ops with subnormals flushed to zero; its expected values are computed
  from flushed operands (bias_act's and RMSNorm's).
- Tolerances are tests/tolerances.py's. Its atol is an absolute error on act, act' and act'',
  which are of order one; a result that multiplies them by a gradient (dx = dy act') is held to
  atol times that gradient's magnitude.
- Gradients (dy, g, g_bias) are drawn up to 1e16 for float32 and bfloat16, so that the compute
  type's products and sums of them (G dy, dbias) stay finite: float32 arithmetic past 3.4e38 is
  Inf by design, not something this op can change. float64 values stay within 1e60, where the
  float64 reference itself (v^4 in gelu_tanh's second derivative) does not overflow.
"""
import functools
import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import bindings  # noqa: E402
from cases import ACTIVATIONS, DTYPES, WEIGHT_DTYPES, numpy_dtype  # noqa: E402
from op_specs import RmsNormAttrs, input_shapes  # noqa: E402
from tolerances import tolerance  # noqa: E402
from twinop import reference  # noqa: E402

# Last dimensions around the vector widths (4 to 32 elements a register) and primes.
LAST_DIMS = (0, 1, 2, 3, 5, 7, 8, 13, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 131)
LEADING_DIMS = (0, 1, 2, 3, 4, 5, 7)
MAX_ELEMENTS = 2048


def finfo(dtype):
    if dtype == "bfloat16":
        return pytest.importorskip("ml_dtypes").finfo(numpy_dtype(dtype))
    return np.finfo(dtype)


LARGEST_INPUT = {"float16": float(np.finfo(np.float16).max), "float32": float(np.finfo(np.float32).max),
                 "bfloat16": 3.3895313892515355e38, "float64": 1e60}
LARGEST_GRADIENT = {**LARGEST_INPUT, "float32": 1e16, "bfloat16": 1e16}


def round_to(values, dtype):
    """float64 values rounded once to `dtype` (past its largest finite value: +-Inf), as float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(numpy_dtype(dtype)).astype(np.float64)


def compute_type(dtype):
    return np.float64 if dtype == "float64" else np.float32


def flush_subnormals(values, dtype):
    """values with the compute type's subnormals replaced by zeros of the same sign."""
    tiny = np.finfo(compute_type(dtype)).smallest_normal
    return np.where(np.abs(values) < tiny, np.copysign(0.0, values), values)


def compute_sum(a, b, dtype, flushes):
    """a + b as the kernels form it: in the compute type, rounded once (and flushed, in TF)."""
    if flushes:
        a, b = flush_subnormals(a, dtype), flush_subnormals(b, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        total = (a.astype(compute_type(dtype)) + b.astype(compute_type(dtype))).astype(np.float64)
    return flush_subnormals(total, dtype) if flushes else total


# ---- strategies ----


def values(dtype, largest):
    """Floats exactly representable in dtype: mostly moderate (the activations' curved part), also
    anywhere up to `largest`, and the special values."""
    info = finfo(dtype)
    specials = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -1.0, largest, -largest,
                float(info.smallest_subnormal), -float(info.smallest_subnormal), float(info.smallest_normal),
                -float(info.smallest_normal)]
    moderate = st.floats(-8.0, 8.0)
    return st.one_of(moderate, moderate, st.floats(-largest, largest), st.sampled_from(specials))


@st.composite
def shapes(draw, min_ndim=1, max_elements=MAX_ELEMENTS):
    last = draw(st.sampled_from(LAST_DIMS) | st.integers(0, 40))
    budget = max_elements // max(last, 1)
    shape = [last]
    for _ in range(draw(st.integers(min_ndim, 4)) - 1):
        size = draw(st.sampled_from([n for n in LEADING_DIMS if n <= budget]))
        budget //= max(size, 1)
        shape.insert(0, size)
    return tuple(shape)


@dataclass(frozen=True)
class Layout:
    """How a tensor of `shape` is cut from a base tensor: "dense" (the base itself),
    "transposed" (a base with its last two axes swapped, swapped back), "strided" (every
    steps[k]-th element of a bigger base along axis k, from starts[k]) or "broadcast" (a base of
    size 1 along `axes`, broadcast)."""
    kind: str
    starts: tuple = ()
    steps: tuple = ()
    axes: tuple = ()

    def base_shape(self, shape):
        if self.kind == "transposed":
            return (*shape[:-2], shape[-1], shape[-2])
        if self.kind == "strided":
            return tuple(start + (n - 1) * step + 1 if n else start
                         for n, start, step in zip(shape, self.starts, self.steps))
        if self.kind == "broadcast":
            return tuple(1 if k in self.axes else n for k, n in enumerate(shape))
        return shape

    def view(self, binding, base, shape):
        if self.kind == "transposed":
            return binding.transpose(base)
        if self.kind == "strided":
            return binding.slice(base, tuple(slice(start, None, step) for start, step in zip(self.starts, self.steps)))
        if self.kind == "broadcast":
            return binding.broadcast(base, shape)
        return base


@st.composite
def layouts(draw, shape):
    kinds = ["dense", "strided", "broadcast"] + (["transposed"] if len(shape) >= 2 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "strided":
        starts = tuple(draw(st.integers(0, 2)) for _ in shape)
        steps = tuple(draw(st.integers(1, 3)) for _ in shape)
        return Layout(kind, starts=starts, steps=steps)
    if kind == "broadcast":
        axes = draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))
        return Layout(kind, axes=tuple(sorted(axes)))
    return Layout(kind)


NUMPY_VIEWS = bindings.NumpyBinding()  # its view operations, for the float64 values the reference sees


@st.composite
def tensor_values(draw, shape, dtype, largest):
    """(layout, float64 base values exactly representable in dtype, the float64 view)."""
    layout = draw(layouts(shape))
    elements = values(dtype, largest)
    base = draw(hnp.arrays(np.float64, layout.base_shape(shape), elements=elements, fill=elements))
    base = round_to(base, dtype)
    return layout, base, np.asarray(layout.view(NUMPY_VIEWS, base, shape), np.float64)


@st.composite
def big_tensor_values(draw, shape, dtype, largest):
    """tensor_values for tensors too big to draw element by element: normal values from a seeded
    generator, with a few drawn values (specials among them) at drawn places."""
    layout = draw(layouts(shape))
    base_shape = layout.base_shape(shape)
    base = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(0.0, 3.0, base_shape)
    for _ in range(draw(st.integers(0, 8))):
        index = tuple(draw(st.integers(0, n - 1)) for n in base_shape)
        base[index] = draw(values(dtype, largest))
    base = round_to(base, dtype)
    return layout, base, np.asarray(layout.view(NUMPY_VIEWS, base, shape), np.float64)


@st.composite
def multi_chunk_shapes(draw, min_ndim=1):
    """2-D and 3-D shapes of 70k to 160k elements: the kernels cut these into several chunks of
    rows (at least 32768 elements each) run on the framework's threads, and sum dbias per chunk."""
    rows = draw(st.integers(2, 1500))
    shape = (rows, draw(st.integers(70_000, 160_000)) // rows)
    if draw(st.booleans()) and rows % 2 == 0:
        shape = (2, rows // 2, shape[1])
    return shape if len(shape) >= min_ndim else (1, *shape)


def needed_inputs(call):
    if call.op == "bias_act":
        names = {"x", "bias"}
        if set(call.outputs) - {"y"}:
            names.add("dy")
        if any(name.startswith("d_") for name in call.outputs):
            names |= {"g", "g_bias"}
    else:
        backward = any(name.startswith("dx") for name in call.outputs)
        names = {"x", "weight"} | ({"dy"} if backward else set())
        if call.op == "add_rms_norm":
            names |= {"residual"} | ({"ds"} if backward else set())
    return sorted(names)


# RMSNorm's values stay where float32 sums of their squares and products cannot overflow (x**2
# summed over 2048 elements, dy * weight * x summed): past that, float32 arithmetic is Inf by design,
# as the native composition's. Its eps is at least 1e-6 here (eps = 0 has its own test).
RMS_LARGEST = {"x": 1e15, "residual": 1e15, "weight": 1e6, "dy": 1e6, "ds": 1e6}
RMS_EPS = (1e-6, 1e-5, 0.1)
RMS_OFFSETS = (0.0, 1.0, -0.5)


@st.composite
def examples(draw, call, shape_strategy, tensor_strategy=tensor_values):
    """(attributes, {input name: dtype}, {input name: (layout, base values, view)}) for one call."""
    dtype = draw(st.sampled_from(DTYPES))
    x_shape = draw(shape_strategy)
    shapes_of = input_shapes(call.op, x_shape)
    if call.op == "bias_act":
        attrs = draw(st.sampled_from(ACTIVATIONS))
        dtypes = {name: dtype for name in shapes_of}
        largest = {name: (LARGEST_INPUT if name in ("x", "bias") else LARGEST_GRADIENT)[dtype] for name in shapes_of}
    else:
        attrs = RmsNormAttrs(draw(st.sampled_from(RMS_EPS)), draw(st.sampled_from(RMS_OFFSETS)))
        dtypes = {name: dtype for name in shapes_of}
        dtypes["weight"] = draw(st.sampled_from(WEIGHT_DTYPES[dtype]))
        largest = {name: min(bound, LARGEST_INPUT[dtypes[name]]) for name, bound in RMS_LARGEST.items()}
    tensors = {}
    for name in needed_inputs(call):
        tensors[name] = draw(tensor_strategy(shapes_of[name], dtypes[name], largest[name]))
    return attrs, dtypes, tensors


# ---- the expected results ----


@dataclass
class Expected:
    exact: np.ndarray  # the float64 reference
    scale: np.ndarray  # the magnitude its absolute error scales with (bias_act: the gradient act, act'
    #                    or act'' is multiplied by, 1 for y)
    dtype: str  # the output's dtype
    summed: int = 1  # terms summed into each element (dbias)
    may_be_nan: np.ndarray = False  # Inf times a derivative that may underflow: NaN is right too


def underflows(gradient, derivative, dtype):
    """Where an infinite gradient meets a derivative that is not 0 but may be in the compute
    type: float arithmetic loses values below 1.2e-38 (the float exp gives 0 there), and
    TensorFlow flushes subnormal intermediates of a derivative that are up to ~1e3 times smaller
    than it. Inf times it is then 0 * Inf = NaN where the reference has Inf."""
    tiny = 1e-34 if compute_type(dtype) is np.float32 else 1e-300
    return np.isinf(gradient) & (derivative != 0) & (np.abs(derivative) < tiny)


def column_sums(e, rows_shape):
    """The Expected of the column sums of e, reshaped to rows_shape: ([examples,] rows, columns)."""
    def rows(a):
        return np.broadcast_to(a, e.exact.shape).reshape(rows_shape)

    return Expected(rows(e.exact).sum(axis=-2), rows(np.where(np.isfinite(e.scale), e.scale, 0.0)).max(axis=-2, initial=0.0),
                    e.dtype, rows_shape[-2], rows(e.may_be_nan).any(axis=-2))


def bias_act_expected(call, tensors, act, dtypes, flushes):
    """name -> Expected, for every name a bias_act call may return."""
    dtype = dtypes["x"]
    v = {name: view for name, (_, _, view) in tensors.items()}
    x = v["x"]
    rows = (int(np.prod(x.shape[:-1])), x.shape[-1])
    per_example = (x.shape[0], int(np.prod(x.shape[1:-1])), x.shape[-1]) if x.ndim >= 2 else rows
    zero_bias = np.zeros(x.shape[-1])
    dy = flush_subnormals(v["dy"], dtype) if flushes and "dy" in v else v.get("dy")
    pre = compute_sum(x, v["bias"], dtype, flushes)  # x + bias in the compute type
    out = {"y": Expected(reference.bias_act(pre, zero_bias, act), np.ones_like(x), dtype)}
    if "dy" in v:
        first = reference.DERIVATIVE[act](pre)
        out["dx"] = Expected(reference.bias_act_backward(dy, pre, zero_bias, act)[0], np.abs(dy), dtype,
                             may_be_nan=underflows(dy, first, dtype))
    if "g" in v:
        g_bias = np.zeros_like(zero_bias) if call.zero_g_bias else v["g_bias"]
        grad = compute_sum(v["g"], g_bias, dtype, flushes)  # G = g + g_bias in the compute type
        d_dy, d_x, _ = reference.bias_act_double_backward(grad, dy, pre, zero_bias, act)
        second = reference.SECOND_DERIVATIVE[act](pre)
        out["d_dy"] = Expected(d_dy, np.abs(grad), dtype, may_be_nan=underflows(grad, first, dtype))
        out["d_x"] = Expected(d_x, np.abs(grad * dy), dtype, may_be_nan=underflows(grad * dy, second, dtype))
    for total, term in (("dbias", "dx"), ("d_bias", "d_x")):
        if term in out:
            out[total] = column_sums(out[term], rows)
            out[f"{total} per example"] = column_sums(out[term], per_example)  # vmap over the first axis
    return out


def rms_norm_expected(call, tensors, attrs, dtypes, flushes):
    """name -> Expected, for every name an rms_norm or add_rms_norm call may return: the float64
    reference at x (add_rms_norm: at s = x + residual formed in the compute type and rounded, as the
    kernels form it). Where the binding flushes subnormals, the kernels read subnormal inputs as
    zeros; what they flush inside (a square, a product) is below every tolerance: eps >= 1e-6 keeps
    rstd <= 1e3."""
    dtype, weight_dtype = dtypes["x"], dtypes["weight"]
    v = {name: flush_subnormals(view, dtype) if flushes else view for name, (_, _, view) in tensors.items()}
    x, w = v["x"], v["weight"]
    out = {}
    if call.op == "add_rms_norm":
        x = round_to(compute_sum(x, v["residual"], dtype, flushes), dtype)
        out["s"] = Expected(x, np.ones_like(x), dtype)
    rows = (int(np.prod(x.shape[:-1])), x.shape[-1])
    per_example = (x.shape[0], int(np.prod(x.shape[1:-1])), x.shape[-1]) if x.ndim >= 2 else rows
    with np.errstate(all="ignore"):
        y, rstd = reference.rms_norm(x, w, attrs.eps, attrs.offset)
        # x rstd, formed first, is lost where it is subnormal (rounded to 0 below half the smallest
        # subnormal, as torch's own x * rsqrt(...) * w rounds it; flushed by TF): times an infinite
        # weight, NaN.
        x_hat_lost = underflows(np.broadcast_to(w + attrs.offset, x.shape), x * rstd[..., None], dtype)
        out["y"] = Expected(y, np.ones_like(x), dtype, may_be_nan=x_hat_lost)
        out["rstd"] = Expected(rstd, np.ones_like(rstd), "float64" if dtype == "float64" else "float32")
        if "dy" in v:
            dy = v["dy"]
            dx, _ = reference.rms_norm_backward(dy, x, w, attrs.eps, attrs.offset)
            r = rstd[..., None]
            g, x_hat = dy * (w + attrs.offset), x * r
            # dx = rstd (g - x_hat mean(g x_hat)): its rounding scales with the terms, not their difference
            mean_abs = np.sum(np.abs(g * x_hat), axis=-1, keepdims=True) / max(x.shape[-1], 1)
            scale = np.abs(r) * (np.abs(g) + np.abs(x_hat) * mean_abs)
            # An infinite gradient in a row makes mean(g x_hat) infinite: where a term of it is Inf
            # times an x_hat that underflows in the compute type, it is NaN there, and so is the row.
            row_not_finite = np.broadcast_to(~np.isfinite(np.sum(g * x_hat, axis=-1, keepdims=True)), dx.shape)
            if call.op == "add_rms_norm":
                dx, scale = dx + v["ds"], scale + np.abs(v["ds"])
            out["dx"] = Expected(dx, scale, dtype, may_be_nan=row_not_finite)
            terms = Expected(dy * x_hat, np.abs(dy * x_hat), weight_dtype, may_be_nan=underflows(dy, x_hat, dtype))
            out["dweight"] = column_sums(terms, rows)
            out["dweight per example"] = column_sums(terms, per_example)  # vmap over the first axis
    return out


def expected_outputs(call, tensors, attrs, dtypes, flushes):
    """name -> Expected, for every name a call may return."""
    if call.op == "bias_act":
        return bias_act_expected(call, tensors, attrs, dtypes, flushes)
    return rms_norm_expected(call, tensors, attrs, dtypes, flushes)


def assert_matches(actual, e, what):
    """actual equals the exact value rounded to dtype: NaN where it is NaN, the same infinity where
    it is infinite, and within tolerance (atol scaled by the gradient's magnitude) where it is
    finite. Where the exact value is within tolerance of the dtype's threshold of rounding to
    +-Inf, the largest finite value and +-Inf are both right; NaN is also right where
    e.may_be_nan."""
    dtype = e.dtype
    exact = np.asarray(e.exact, np.float64)
    expected = round_to(exact, dtype)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    rtol, atol = tolerance(dtype, e.summed)
    scale = np.where(np.isfinite(e.scale), np.maximum(e.scale, 1.0), 1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        tol = atol * scale + rtol * np.abs(exact)
        close = np.abs(actual - np.where(np.isfinite(expected), expected, exact)) <= tol
        rounds_to_inf = np.isinf(round_to(np.abs(exact) + tol, dtype))  # within tol of the threshold
        same = (np.isnan(actual) & np.isnan(expected)) | (actual == expected)
    finite_ok = (close & np.isfinite(actual)) | (rounds_to_inf & (actual == np.copysign(np.inf, exact)))
    ok = np.where(np.isfinite(exact), finite_ok, same) | (e.may_be_nan & np.isnan(actual))
    if not ok.all():
        bad = np.argwhere(~ok)[:5]
        detail = "; ".join(f"at {tuple(i)}: got {actual[tuple(i)]!r}, want {expected[tuple(i)]!r}" for i in bad)
        raise AssertionError(f"{what} ({dtype}): {int((~ok).sum())} of {ok.size} wrong; {detail}")


def check_call(binding_name, call_name, attrs, dtypes, tensors, want=None):
    """The call's outputs against want (the expected outputs; computed here where not given)."""
    binding = bindings.load(binding_name)
    call = binding.calls[call_name]
    shape_of = {name: view.shape for name, (_, _, view) in tensors.items()}
    bases = {name: binding.tensor(base, dtypes[name]) for name, (_, base, _) in tensors.items()}
    before = {name: binding.bits(t) for name, t in bases.items()}
    inputs = SimpleNamespace(**{name: layout.view(binding, bases[name], shape_of[name])
                                for name, (layout, _, _) in tensors.items()})
    got = call.fn(inputs, attrs)
    assert len(got) == len(call.outputs)
    for name, t in bases.items():
        assert binding.bits(t) == before[name], f"{call_name} changed its input {name}"
    if call.op != "bias_act" and getattr(binding, "float32_attrs", False):
        attrs = RmsNormAttrs(*(float(np.float32(value)) for value in attrs))  # eps and offset as the kernels see them
    if want is None:
        with np.errstate(all="ignore"):  # Inf - Inf in a column sum is NaN, as it is in the kernels
            want = expected_outputs(call, tensors, attrs, dtypes, binding.flushes_subnormals)
    for name, t in zip(call.outputs, got):
        assert binding.dtype_name(t) == want[name].dtype, f"{name}: dtype {binding.dtype_name(t)}, want {want[name].dtype}"
        assert_matches(binding.to_float64(t), want[name], f"{call_name}: {name}")
    if call.same_bits_as:
        again = binding.calls[call.same_bits_as].fn(inputs, attrs)
        for name, a, b in zip(call.outputs, got, again):
            assert binding.bits(a) == binding.bits(b), f"{name} differs in bits from {call.same_bits_as}"


CALLS = bindings.calls()
BIAS_ACT_CALLS = [(b, c) for b, c in CALLS if c is None or bindings.load(b).calls[c].op == "bias_act"]


@pytest.mark.parametrize("binding_name,call_name", CALLS, ids=[f"{b}: {c}" for b, c in CALLS])
@given(data=st.data())
def test_matches_reference(binding_name, call_name, data):
    if call_name is None:
        pytest.skip(f"the {binding_name} binding was not built")
    call = bindings.load(binding_name).calls[call_name]
    attrs, dtypes, tensors = data.draw(examples(call, shapes(min_ndim=call.min_ndim)), label="example")
    check_call(binding_name, call_name, attrs, dtypes, tensors)


@pytest.mark.parametrize("binding_name,call_name", CALLS, ids=[f"{b}: {c}" for b, c in CALLS])
@settings(max_examples=max(2, settings.default.max_examples // 10))
@given(data=st.data())
def test_multi_chunk_shapes_match_reference(binding_name, call_name, data):
    if call_name is None:
        pytest.skip(f"the {binding_name} binding was not built")
    call = bindings.load(binding_name).calls[call_name]
    example = examples(call, multi_chunk_shapes(min_ndim=call.min_ndim), big_tensor_values)
    attrs, dtypes, tensors = data.draw(example, label="example")
    check_call(binding_name, call_name, attrs, dtypes, tensors)


TAIL_SHAPE = (4, 17_500)


def tail_sweep_tensors(dtype, inputs):
    """x + bias from -100 to 100 at 70k points (several chunks), Inf and -Inf gradients."""
    x = round_to(np.linspace(-100.0, 100.0, 70_000).reshape(TAIL_SHAPE), dtype)
    values = {"x": x, "bias": np.zeros(TAIL_SHAPE[-1]), "dy": np.full(TAIL_SHAPE, np.inf),
              "g": np.full(TAIL_SHAPE, -np.inf), "g_bias": np.zeros(TAIL_SHAPE[-1])}
    dense = Layout("dense")
    return {name: (dense, values[name], values[name]) for name in inputs}


@functools.lru_cache(maxsize=None)
def tail_sweep_expected(dtype, act, inputs, zero_g_bias, flushes):
    """The sweep's expected outputs: the same for every binding's call with these inputs, so the
    float64 reference runs once for them, not once per binding."""
    call = SimpleNamespace(op="bias_act", zero_g_bias=zero_g_bias)
    with np.errstate(all="ignore"):
        return expected_outputs(call, tail_sweep_tensors(dtype, inputs), act, dict.fromkeys(inputs, dtype), flushes)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("binding_name,call_name", BIAS_ACT_CALLS, ids=[f"{b}: {c}" for b, c in BIAS_ACT_CALLS])
def test_infinite_gradients_through_the_tails(binding_name, call_name, dtype):
    """Inf and -Inf gradients times every activation's derivatives at x + bias from -100 to 100,
    70k points (several chunks): where a derivative is tiny but not 0, the result is the signed
    Inf (or NaN where the derivative underflows in the compute type), never the other sign.
    Random examples meet these tails only now and then; TensorFlow flushes subnormals there."""
    if call_name is None:
        pytest.skip(f"the {binding_name} binding was not built")
    binding = bindings.load(binding_name)
    call = binding.calls[call_name]
    inputs = tuple(needed_inputs(call))
    tensors = tail_sweep_tensors(dtype, inputs)
    for act in ACTIVATIONS:
        want = tail_sweep_expected(dtype, act, inputs, call.zero_g_bias, binding.flushes_subnormals)
        check_call(binding_name, call_name, act, dict.fromkeys(inputs, dtype), tensors, want)
