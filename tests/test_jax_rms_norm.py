"""twinop.jax.rms_norm and add_rms_norm against the composition
x * rsqrt(mean(x^2) + eps) * (w + offset) in float64, for every transform of the README's autodiff
table: grad and vjp (eager and jit), second order in every mix of reverse and forward mode,
jax.test_util.check_grads, third order, vmap of each without a per-example loop; the fused
backward under jax.grad; bad input at trace time and in the handlers."""
import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")
tj = pytest.importorskip("twinop.jax", exc_type=ImportError)

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import twinop.numpy as tn  # noqa: E402
from cases import make_rms_norm_inputs, numpy_dtype  # noqa: E402
from tolerances import NATIVE_FLOAT64  # noqa: E402
from twinop.jax import _rms_norm_ffi  # noqa: E402

RTOL, ATOL = NATIVE_FLOAT64["jax"]
EPS, OFFSET = 1e-5, 0.5

pytestmark = pytest.mark.usefixtures("jax_float64")  # float64 arrays in this module (conftest.py)


def composition(x, w):
    return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + EPS) * (w + OFFSET)


# Each op as a function of (x, weight): add_rms_norm with the residual sin(x), its (y, s).
OPS = {
    "rms_norm": (lambda x, w: tj.rms_norm(x, w, EPS, offset=OFFSET), composition),
    "add_rms_norm": (lambda x, w: tj.add_rms_norm(x, jnp.sin(x), w, EPS, offset=OFFSET),
                     lambda x, w: (composition(x + jnp.sin(x), w), x + jnp.sin(x))),
}


def inputs(shape=(3, 5), seed=0, weight_shape=None):
    """float64 (x, weight); weight of weight_shape (per example under vmap) where given."""
    x, w, *_ = make_rms_norm_inputs(shape, "float64", "float64", seed=seed)
    if weight_shape is not None:
        w = np.random.default_rng(seed).normal(1.0, 0.5, weight_shape)
    return jnp.asarray(x), jnp.asarray(w)


def assert_same(got, want):
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL), got, want)


def scalar(f):
    """A loss of every output of f, nonlinear in each."""
    return lambda x, w: sum(jnp.sum(jnp.cos(y) * x) for y in jax.tree.leaves(f(x, w)))


def penalty(f):
    """A gradient penalty: the loss holds its own gradient, so its step needs second order."""
    def loss(x, w):
        g_x, g_w = jax.grad(scalar(f), argnums=(0, 1))(x, w)
        return scalar(f)(x, w) + jnp.sum(g_x**2) + jnp.sum(g_w**2)
    return jax.grad(loss, argnums=(0, 1))


TRANSFORMS = {
    "forward": lambda f: f,
    "grad": lambda f: jax.grad(scalar(f), argnums=(0, 1)),
    "vjp": lambda f: lambda x, w: jax.vjp(f, x, w)[1](jax.tree.map(jnp.cos, f(x, w))),
    "gradient penalty": penalty,
    "jacrev of jacrev": lambda f: jax.jacrev(jax.jacrev(scalar(f), argnums=(0, 1)), argnums=(0, 1)),
    "jvp": lambda f: lambda x, w: jax.jvp(f, (x, w), (jnp.sin(x), jnp.cos(w))),
    "jvp in weight": lambda f: lambda x, w: jax.jvp(lambda v: f(x, v), (w,), (jnp.cos(w),)),
    "linearize": lambda f: lambda x, w: jax.linearize(f, x, w)[1](jnp.sin(x), jnp.cos(w)),
    "jacfwd": lambda f: jax.jacfwd(f, argnums=(0, 1)),
    "jacrev": lambda f: jax.jacrev(f, argnums=(0, 1)),
    "hessian": lambda f: jax.hessian(scalar(f), argnums=(0, 1)),
    "jacrev of jacfwd": lambda f: jax.jacrev(jax.jacfwd(scalar(f), argnums=(0, 1)), argnums=(0, 1)),
    "jvp of grad": lambda f: lambda x, w: jax.jvp(jax.grad(scalar(f), argnums=(0, 1)), (x, w),
                                                   (jnp.sin(x), jnp.cos(w))),
    "grad of jvp": lambda f: jax.grad(lambda x, w: sum(jnp.sum(t**2) for t in jax.tree.leaves(
        jax.jvp(f, (x, w), (x * x, jnp.cos(w)))[1])), argnums=(0, 1)),
    "third order": lambda f: jax.grad(lambda x, w: jnp.sum(jax.hessian(scalar(f))(x, w) ** 2), argnums=(0, 1)),
}
CASES = [(op, t, jit) for op in OPS for t in TRANSFORMS for jit in (True, False)
         if jit or (op == "rms_norm" and t in ("forward", "grad", "jvp", "hessian"))]  # eager: the same rules, slowly


@pytest.mark.parametrize("op,transform,jit", CASES, ids=[f"{o}-{t}-{'jit' if j else 'eager'}" for o, t, j in CASES])
def test_matches_the_composition(op, transform, jit):
    x, w = inputs(seed=1)
    ours, native = OPS[op]
    wrap = jax.jit if jit else (lambda f: f)
    assert_same(wrap(TRANSFORMS[transform](ours))(x, w), jax.jit(TRANSFORMS[transform](native))(x, w))


@pytest.mark.parametrize("op", OPS)
def test_check_grads_in_both_modes_to_second_order(op):
    check_grads(jax.jit(OPS[op][0]), inputs(seed=2), order=2, modes=["fwd", "rev"])


VMAPS = {"x": ((0, None), (3, 4, 5), (5,)), "weight": ((None, 0), (4, 5), (3, 5)),
         "both": ((0, 0), (3, 4, 5), (3, 5)), "x on axis 1": ((1, None), (4, 3, 5), (5,))}


VMAP_CASES = [("rms_norm", name, t) for name in VMAPS for t in ("forward", "grad", "jvp", "hessian", "jvp of grad",
                                                                   "grad of jvp")]
VMAP_CASES += [("add_rms_norm", "both", t) for t in ("forward", "grad", "jvp", "jvp of grad")]


@pytest.mark.parametrize("op,name,transform", VMAP_CASES, ids=["-".join(c) for c in VMAP_CASES])
def test_vmap(op, name, transform):
    """Batched x, weight or both: the batching rules of every primitive each transform reaches."""
    in_axes, x_shape, w_shape = VMAPS[name]
    x, w = inputs(x_shape, seed=3, weight_shape=w_shape)
    ours, native = OPS[op]
    per_example = lambda f: jax.jit(jax.vmap(TRANSFORMS[transform](f), in_axes))(x, w)  # noqa: E731
    assert_same(per_example(ours), per_example(native))


def custom_calls(fn, *args):
    """The custom-call targets of the compiled program, whether it loops, and its reductions."""
    hlo = jax.jit(fn).lower(*args).compile().as_text()
    reductions = len(re.findall(r"\breduce\(", hlo))
    return sorted(re.findall(r'custom_call_target="(\w+)"', hlo)), " while(" in hlo, reductions


def test_grad_runs_the_fused_backward_kernel():
    """jax.grad transposes the tangent primitive into the backward kernel (dx and dweight in one
    pass, with the forward's rstd): no reduction of XLA's own, for either op."""
    x, w = inputs((64, 32))
    assert custom_calls(jax.grad(scalar(OPS["rms_norm"][0]), argnums=(0, 1)), x, w) == (
        ["twinop_rms_norm", "twinop_rms_norm_backward"], False, 0)
    add = lambda x, w: jnp.sum(jnp.concatenate(OPS["add_rms_norm"][0](x, w)) ** 2)  # noqa: E731
    assert custom_calls(jax.grad(add, argnums=(0, 1)), x, w) == (
        ["twinop_add_rms_norm", "twinop_add_rms_norm_backward"], False, 0)


def test_vmap_calls_each_kernel_once_without_a_loop():
    in_axes, x_shape, w_shape = VMAPS["both"]
    x, w = jnp.ones(x_shape), jnp.ones(w_shape)
    calls, loops, _ = custom_calls(jax.vmap(jax.grad(scalar(OPS["rms_norm"][0]), argnums=(0, 1)), in_axes), x, w)
    assert calls == ["twinop_rms_norm", "twinop_rms_norm_backward"] and not loops


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_float32_weight_with_half_x(dtype):
    """Mixed precision: the gradients keep their inputs' dtypes, dweight float32, and equal the
    numpy binding's bits (the same core, XLA's pool against numpy's threads)."""
    x, w, dy, _, _ = make_rms_norm_inputs((64, 96), dtype, "float32", seed=5)
    np_x, np_dy, np_w = x.astype(numpy_dtype(dtype)), dy.astype(numpy_dtype(dtype)), w.astype(np.float32)
    y, pullback = jax.vjp(lambda x, w: tj.rms_norm(x, w, EPS, offset=OFFSET), jnp.asarray(np_x), jnp.asarray(np_w))
    dx, dweight = pullback(jnp.asarray(np_dy))
    assert (y.dtype, dx.dtype, dweight.dtype) == (np_x.dtype, np_x.dtype, np.float32)
    for got, want in zip((y, dx, dweight), (tn.rms_norm(np_x, np_w, EPS, offset=OFFSET),
                                            *tn.rms_norm_backward(np_dy, np_x, np_w, EPS, offset=OFFSET))):
        assert np.asarray(got).tobytes() == want.tobytes()


BAD_INPUTS = [
    # (x, weight, eps, offset, exception, words the message must contain)
    (np.ones((2, 3), np.float32), np.ones(4, np.float32), 1e-6, 0.0, ValueError, ["weight", "3", "4"]),
    (np.ones((2, 3), np.float32), np.ones((3, 1), np.float32), 1e-6, 0.0, ValueError, ["weight", "1-D"]),
    (np.float32(1.0), np.ones(1, np.float32), 1e-6, 0.0, ValueError, ["x", "dimension"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float64), 1e-6, 0.0, TypeError, ["weight", "dtype", "float64"]),
    (np.ones((2, 3), np.int32), np.ones(3, np.float32), 1e-6, 0.0, TypeError, ["x", "int32"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float32), -1e-6, 0.0, ValueError, ["eps", ">= 0"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float32), 1e-6, float("nan"), ValueError, ["offset", "finite"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float32), "1e-6", 0.0, TypeError, ["eps", "float", "str"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float32), 1e-6, jnp.ones(()), TypeError, ["offset", "float"]),
]


@pytest.mark.parametrize("mode", ["eager", "jit", "grad", "jvp", "add_rms_norm"])
@pytest.mark.parametrize("x,w,eps,offset,error,words", BAD_INPUTS)
def test_bad_input_raises_at_trace_time_naming_the_argument(x, w, eps, offset, error, words, mode):
    f = lambda a, b: tj.rms_norm(a, b, eps, offset=offset)  # noqa: E731
    call = {
        "eager": lambda: f(x, w),
        "jit": lambda: jax.jit(f).lower(x, w),
        "grad": lambda: jax.grad(lambda a, b: jnp.sum(f(a, b)))(x, w),
        "jvp": lambda: jax.jvp(f, (x, w), (x, w)),
        "add_rms_norm": lambda: tj.add_rms_norm(x, x, w, eps, offset=offset),
    }[mode]
    if mode in ("grad", "jvp") and np.issubdtype(np.asarray(x).dtype, np.integer):
        error, words = TypeError, []  # JAX's own check comes first
    with pytest.raises(error) as info:
        call()
    assert all(word in str(info.value) for word in words), str(info.value)


@pytest.mark.parametrize("call,message", [
    (lambda: _raw("twinop_rms_norm", (np.ones((2, 3), np.float32), np.ones(4, np.float32)), ((2, 3), (2,))),
     "weight must have x.shape[-1] = 3 elements; got 4"),
    (lambda: _raw("twinop_rms_norm", (np.ones((2, 3), np.float32), np.ones(3, np.float32)), ((2, 3), (3,))),
     "rstd must have the shape x.shape[:-1] = [2]; got [3]"),
    (lambda: _raw("twinop_rms_norm", (np.ones((2, 3), np.float32), np.ones(3, np.float32)), ((2, 3), (2,)),
                  eps=-1.0), "eps must be finite and >= 0; got -1"),
    (lambda: _raw("twinop_rms_norm_backward", (np.ones((2, 3), np.float32),) * 2 + (np.ones(2, np.float32),
                                                                                  np.ones(3, np.float32)),
                  ((2, 3), (4,)), eps=None), "dweight must have the shape of weight [3]; got [4]"),
])
def test_the_handlers_check_their_arguments_too(call, message):
    """For callers of the raw targets: XLA's INVALID_ARGUMENT, with the same words."""
    with pytest.raises(jax.errors.JaxRuntimeError, match=re.escape("INVALID_ARGUMENT: twinop.rms_norm: " + message)):
        jax.block_until_ready(call())


def _raw(target, args, shapes, eps=1e-6):
    """The FFI target called directly, without twinop.jax's trace-time check."""
    out = tuple(jax.ShapeDtypeStruct(s, np.float32) for s in shapes)
    attrs = {"offset": 0.0} if eps is None else {"eps": eps, "offset": 0.0}
    return jax.ffi.ffi_call(target, out)(*args, **attrs)


def test_raw_calls_have_no_derivative_of_their_own():
    """rms_norm's derivatives come from its primitives; the bare FFI call has none."""
    x, w = inputs()
    with pytest.raises(ValueError, match="cannot be differentiated"):
        jax.grad(lambda a: jnp.sum(_rms_norm_ffi.rms_norm(a, w, eps=EPS, offset=OFFSET)[0]))(x)
