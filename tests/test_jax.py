"""The JAX binding on the CPU: the XLA FFI handlers, eagerly and under jax.jit, against the
float64 reference; its argument errors at trace time and in the handlers; XLA's thread pool."""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")
tj = pytest.importorskip("twinop.jax", exc_type=ImportError)

import jax.numpy as jnp  # noqa: E402

import twinop.numpy as tn  # noqa: E402
from cases import ACTIVATIONS, DTYPES, SHAPES, SPECIAL_X, make_double_backward_inputs, make_inputs, rows_of  # noqa: E402
from tolerances import assert_close  # noqa: E402
from twinop import reference  # noqa: E402
from twinop.jax import _bias_act_ffi  # noqa: E402
from twinop.jax._bias_act_ops import bind, double_backward_p  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("jax_float64")  # float64 arrays in this module (conftest.py)


def to_jax(values, dtype_name):
    return jnp.asarray(values, jnp.float64).astype(dtype_name)


def to_numpy(a):
    return np.asarray(jnp.asarray(a, jnp.float64))


def forward_backward(x, bias, dy, act):
    y, vjp = jax.vjp(lambda a, b: tj.bias_act(a, b, act), x, bias)
    return (y, *vjp(dy))


forward_backward_jit = jax.jit(forward_backward, static_argnums=3)


# Eagerly a primitive runs its impl, the FFI call that jax.jit's program holds too: every shape
# under jax.jit, a 1-D and a row-wise shape eagerly.
MODE_SHAPES = [("jit", shape) for shape in SHAPES] + [("eager", (37,)), ("eager", (3, 3001))]


@pytest.mark.parametrize("mode,shape", MODE_SHAPES, ids=[f"{mode}-{shape}" for mode, shape in MODE_SHAPES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_and_backward_match_reference(act, dtype, shape, mode):
    x, bias, dy = make_inputs(shape, dtype)
    run = forward_backward if mode == "eager" else forward_backward_jit
    y, dx, dbias = run(to_jax(x, dtype), to_jax(bias, dtype), to_jax(dy, dtype), act)
    for name, got, like in (("y", y, x), ("dx", dx, x), ("dbias", dbias, bias)):
        assert got.dtype == dtype and got.shape == like.shape, name
    want_dx, want_dbias = reference.bias_act_backward(dy, x, bias, act)
    assert_close(to_numpy(y), reference.bias_act(x, bias, act), dtype, what="y")
    assert_close(to_numpy(dx), want_dx, dtype, what="dx")
    assert_close(to_numpy(dbias), want_dbias, dtype, summed=rows_of(shape), what="dbias")


# The FFI call's numerics on every shape are tests/test_double_backward.py's JAX column; here the
# primitive that lowers to it, on a 1-D and a row-wise shape.
@pytest.mark.parametrize("shape", [(37,), (3, 3001)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_double_backward_matches_reference(act, dtype, shape):
    x, bias, dy, g, g_bias = make_double_backward_inputs(shape, dtype)
    got = bind(double_backward_p, *(to_jax(a, dtype) for a in (g, g_bias, dy, x, bias)), act=act)
    want = reference.bias_act_double_backward(g, dy, x, bias, act, g_bias=g_bias)
    assert_close(to_numpy(got[0]), want[0], dtype, what="d_dy")
    assert_close(to_numpy(got[1]), want[1], dtype, what="d_x")
    assert_close(to_numpy(got[2]), want[2], dtype, summed=rows_of(shape), what="d_bias")


def test_inside_a_larger_jitted_program():
    """The custom call is one instruction of an XLA program: fed by a matmul, feeding a reduction."""
    rng = np.random.default_rng(5)
    a, w, bias = rng.standard_normal((16, 8)), rng.standard_normal((8, 32)), rng.standard_normal(32)
    program = jax.jit(lambda a, w, b: jnp.sum(tj.bias_act(a @ w, b, "silu") ** 2, axis=0))
    assert "custom_call_target=\"twinop_bias_act\"" in program.lower(a, w, bias).as_text(dialect="hlo")
    assert_close(to_numpy(program(a, w, bias)), np.sum(reference.bias_act(a @ w, bias, "silu") ** 2, axis=0), "float64")


def test_transposed_input():
    """A transposed x reaches the handler row-major: XLA lays operands out as ffi_call asks."""
    x, bias, _ = make_inputs((6, 9), "float32")
    got = jax.jit(lambda a, b: tj.bias_act(a.T, b))(to_jax(x, "float32"), to_jax(bias[:6], "float32"))
    assert_close(to_numpy(got), reference.bias_act(x.T, bias[:6], "gelu"), "float32")


@pytest.mark.parametrize("shape", [(0, 5), (2, 0, 5), (4, 0), (0,)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_input(shape, dtype):
    x, dy = jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)
    bias = jnp.ones(shape[-1], dtype)
    y, dx, dbias = forward_backward(x, bias, dy, "gelu")
    assert y.shape == shape and dx.shape == shape and dbias.shape == bias.shape
    np.testing.assert_array_equal(to_numpy(dbias), np.zeros(shape[-1]))
    d_dy, d_x, d_bias = bind(double_backward_p, x, bias, dy, x, bias, act="gelu")
    assert d_dy.shape == shape and d_x.shape == shape
    np.testing.assert_array_equal(to_numpy(d_bias), np.zeros(shape[-1]))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nan_and_inf_propagate_as_the_reference(act):
    bias = np.zeros(SPECIAL_X.shape[-1])
    y, dx, _ = forward_backward(jnp.asarray(SPECIAL_X), jnp.asarray(bias), jnp.ones(SPECIAL_X.shape), act)
    assert_close(to_numpy(y), reference.bias_act(SPECIAL_X, bias, act), "float64")
    assert_close(to_numpy(dx), reference.bias_act_backward(np.ones_like(SPECIAL_X), SPECIAL_X, bias, act)[0], "float64")


def test_results_are_bit_identical_to_the_numpy_binding():
    """XLA's thread pool runs the chunks here, threads of its own in the numpy binding:
    the core's fixed chunk plan makes them agree bit for bit, dbias included."""
    rng = np.random.default_rng(3)
    x, dy = (rng.standard_normal((512, 1024)).astype(np.float32) for _ in range(2))
    bias = rng.standard_normal(1024).astype(np.float32)
    for got, want in zip(forward_backward_jit(x, bias, dy, "gelu"),
                         (tn.bias_act(x, bias), *tn.bias_act_backward(dy, x, bias))):
        np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset")
def test_one_thread_pool_finishes_with_the_same_bits():
    """Pinned to one CPU, XLA's intra-op pool has one thread, possibly the one running the
    handler: the handler must not wait for a helper that cannot start. Its results are those of
    the many-chunk run on this process's pool, bit for bit."""
    code = textwrap.dedent("""
        import sys, numpy as np, jax, twinop.jax as tj
        rng = np.random.default_rng(3)
        x, dy = (rng.standard_normal((512, 1024)).astype(np.float32) for _ in range(2))
        bias = rng.standard_normal(1024).astype(np.float32)
        y, vjp = jax.vjp(lambda a, b: tj.bias_act(a, b), x, bias)
        np.save(sys.argv[1], np.concatenate([np.ravel(a) for a in (y, *vjp(dy))]))
    """)
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"twinop-jax-one-thread-{os.getpid()}.npy")
    try:
        subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code, out], check=True, timeout=120, cwd=ROOT)
        one_thread = np.load(out)
    finally:
        if os.path.exists(out):
            os.remove(out)
    rng = np.random.default_rng(3)
    x, dy = (rng.standard_normal((512, 1024)).astype(np.float32) for _ in range(2))
    bias = rng.standard_normal(1024).astype(np.float32)
    here = np.concatenate([np.ravel(a) for a in forward_backward(x, bias, dy, "gelu")])
    np.testing.assert_array_equal(one_thread, here)


BAD_INPUTS = [
    # (x, bias, act, exception, words the message must contain)
    (np.ones((2, 3), np.float32), np.ones(4, np.float32), "gelu", ValueError, ["bias", "3"]),
    (np.ones((2, 3), np.float32), np.ones((3, 1), np.float32), "gelu", ValueError, ["bias", "1-D"]),
    (np.float32(1.0), np.ones(1, np.float32), "gelu", ValueError, ["x", "dimension"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float64), "gelu", TypeError, ["bias", "dtype", "float64"]),
    (np.ones((2, 3), np.int32), np.ones(3, np.int32), "gelu", TypeError, ["x", "int32", "bfloat16"]),
    (np.ones((2, 3), np.complex64), np.ones(3, np.complex64), "gelu", TypeError, ["x", "complex64"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float32), "tanh", ValueError, ["act", "gelu_tanh"]),
]


@pytest.mark.parametrize("mode", ["eager", "jit", "grad"])
@pytest.mark.parametrize("x,bias,act,error,words", BAD_INPUTS)
def test_bad_input_raises_at_trace_time_naming_the_argument(x, bias, act, error, words, mode):
    """JAX arrays are immutable, so no input can change; the error comes before anything runs."""
    call = {
        "eager": lambda: tj.bias_act(x, bias, act),
        "jit": lambda: jax.jit(lambda a, b: tj.bias_act(a, b, act)).lower(x, bias),
        "grad": lambda: jax.grad(lambda a, b: jnp.sum(tj.bias_act(a, b, act)))(x, bias),
    }[mode]
    if mode == "grad" and np.issubdtype(x.dtype, np.integer):
        error, words = TypeError, ["grad requires"]  # JAX's own check comes first
    with pytest.raises(error) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)


def raw_forward(x, bias, out_shape=None, act="gelu"):
    """The FFI target called directly, without twinop.jax's trace-time check."""
    out = jax.ShapeDtypeStruct(x.shape if out_shape is None else out_shape, x.dtype)
    return jax.ffi.ffi_call("twinop_bias_act", out)(x, bias, act=act)


@pytest.mark.parametrize("args,message", [
    ((np.ones((2, 3), np.float32), np.ones(4, np.float32)), "bias must have x.shape[-1] = 3 elements; got 4"),
    ((np.ones((2, 3), np.int32), np.ones(3, np.int32)), "x must be float32, float64, float16 or bfloat16; got S32"),
    ((np.ones((2, 3), np.float32), np.ones(3, np.float32), (3,)), "y must have the shape of x [2, 3]; got [3]"),
    ((np.ones((2, 3), np.float32), np.ones(3, np.float32), None, "tanh"), "act must be one of gelu"),
])
def test_the_handlers_check_their_arguments_too(args, message):
    """For callers of the raw targets: XLA's INVALID_ARGUMENT, with the same words."""
    with pytest.raises(jax.errors.JaxRuntimeError, match=re.escape("INVALID_ARGUMENT: twinop.bias_act: " + message)):
        jax.block_until_ready(raw_forward(*args))


def test_handler_check_covers_the_backward_outputs():
    x, bias = np.ones((2, 3), np.float32), np.ones(3, np.float32)
    shapes = (jax.ShapeDtypeStruct((2, 3), np.float32), jax.ShapeDtypeStruct((2,), np.float32))
    with pytest.raises(jax.errors.JaxRuntimeError, match=re.escape("dbias must have the shape of bias [3]; got [2]")):
        jax.block_until_ready(jax.ffi.ffi_call("twinop_bias_act_backward", shapes)(x, x, bias, act="gelu"))


def test_raw_targets_have_no_derivative_or_batching_of_their_own():
    """bias_act's derivative and vmap come from twinop.jax; the bare FFI call has neither."""
    x, bias = jnp.ones((2, 3)), jnp.ones(3)
    with pytest.raises(ValueError, match="cannot be differentiated"):
        jax.grad(lambda a: jnp.sum(raw_forward(a, bias)))(x)
    with pytest.raises(NotImplementedError, match="vmap_method"):
        jax.vmap(lambda a: raw_forward(a, bias))(jnp.ones((4, 2, 3)))
    with pytest.raises(ValueError, match="act must be one of"):
        _bias_act_ffi.forward(x, bias, act="swish")
