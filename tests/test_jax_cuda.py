"""The JAX binding's CUDA handlers under jax.jit on a GPU: every activation x dtype against the
float64 reference, the double backward, empty inputs, NaN/Inf, reproducible dbias, agreement
with the CPU handlers, vmap and grad. Skipped without a JAX GPU backend."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
try:
    GPU = jax.devices("gpu")[0]
except RuntimeError:  # no GPU backend in this jax install, or no GPU
    pytest.skip("no JAX GPU backend", allow_module_level=True)

import jax.numpy as jnp  # noqa: E402

import twinop.jax as tj  # noqa: E402  (imported only where a GPU exists)
from cases import ACTIVATIONS, DTYPES, SHAPES, SPECIAL_X, make_double_backward_inputs, make_inputs, rows_of  # noqa: E402
from tolerances import assert_close  # noqa: E402
from twinop import _build_info, reference  # noqa: E402
from twinop.jax._bias_act_ops import bind, double_backward_p  # noqa: E402

# The shared shapes (scalar path) and two that take the vectorized path.
CUDA_SHAPES = SHAPES + [(7, 1000), (64, 4096)]


pytestmark = pytest.mark.usefixtures("jax_float64")  # float64 arrays in this module (conftest.py)


@pytest.fixture(autouse=True)
def built_with_cuda():
    """A GPU without twinop's CUDA handlers is a failed build, not a reason to skip."""
    assert _build_info.WITH_CUDA, "twinop was built without CUDA: rebuild with TWINOP_CUDA=ON"


def on_gpu(values, dtype_name):
    return jax.device_put(jnp.asarray(values, jnp.float64).astype(dtype_name), GPU)


def to_numpy(a):
    return np.asarray(jnp.asarray(a, jnp.float64))


@jax.jit
def forward_backward_every_act(x, bias, dy):
    """{act: (y, dx, dbias)}: one compiled program per dtype and shape."""
    out = {}
    for act in ACTIVATIONS:
        y, vjp = jax.vjp(lambda a, b: tj.bias_act(a, b, act), x, bias)  # noqa: B023
        out[act] = (y, *vjp(dy))
    return out


def check_forward_backward(got, x, bias, dy, act, dtype):
    y, dx, dbias = got
    want_dx, want_dbias = reference.bias_act_backward(dy, x, bias, act)
    assert_close(to_numpy(y), reference.bias_act(x, bias, act), dtype, what=f"{act} y")
    assert_close(to_numpy(dx), want_dx, dtype, what=f"{act} dx")
    assert_close(to_numpy(dbias), want_dbias, dtype, summed=rows_of(x.shape), what=f"{act} dbias")


@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_reference_under_jit(dtype, shape):
    x, bias, dy = make_inputs(shape, dtype)
    results = forward_backward_every_act(*(on_gpu(a, dtype) for a in (x, bias, dy)))
    for act in ACTIVATIONS:
        assert all(r.devices() == {GPU} and r.dtype == dtype for r in results[act])
        check_forward_backward(results[act], x, bias, dy, act, dtype)


def test_the_program_calls_the_cuda_handlers():
    x = on_gpu(np.ones((4, 8)), "float32")
    hlo = jax.jit(lambda a, b: tj.bias_act(a, b)).lower(x, x[0]).compile().as_text()
    assert 'custom_call_target="twinop_bias_act"' in hlo


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_double_backward_matches_reference(act, dtype):
    x, bias, dy, g, g_bias = make_double_backward_inputs((37, 300), dtype)
    fn = jax.jit(lambda *a: bind(double_backward_p, *a, act=act))
    got = fn(*(on_gpu(a, dtype) for a in (g, g_bias, dy, x, bias)))
    want = reference.bias_act_double_backward(g, dy, x, bias, act, g_bias=g_bias)
    assert_close(to_numpy(got[0]), want[0], dtype, what="d_dy")
    assert_close(to_numpy(got[1]), want[1], dtype, what="d_x")
    assert_close(to_numpy(got[2]), want[2], dtype, summed=37, what="d_bias")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nan_and_inf_propagate_as_the_reference(act, dtype):
    x, bias, dy = SPECIAL_X, np.zeros(SPECIAL_X.shape[-1]), np.ones_like(SPECIAL_X)  # exact in every dtype
    got = forward_backward_every_act(*(on_gpu(a, dtype) for a in (x, bias, dy)))[act]
    check_forward_backward(got, x, bias, dy, act, dtype)


@pytest.mark.parametrize("shape", [(0, 16), (2, 0, 16), (4, 0), (0,)], ids=str)
def test_empty_input(shape):
    """No rows: no workspace, and dbias is zeros."""
    x = on_gpu(np.zeros(shape), "float32")
    y, dx, dbias = forward_backward_every_act(x, on_gpu(np.ones(shape[-1]), "float32"), x)["gelu"]
    assert y.shape == shape and dx.shape == shape
    np.testing.assert_array_equal(to_numpy(dbias), np.zeros(shape[-1]))


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_dbias_is_bit_reproducible(dtype):
    x, bias, dy = (on_gpu(a, dtype) for a in make_inputs((8192, 1024), dtype, seed=3))
    first = forward_backward_every_act(x, bias, dy)["gelu"]
    assert np.isfinite(to_numpy(first[2])).all() and np.abs(to_numpy(first[2])).sum() > 0
    for _ in range(3):
        again = forward_backward_every_act(x, bias, dy)["gelu"]
        for a, b in zip(first, again):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gpu_and_cpu_handlers_agree(dtype):
    x, bias, dy = make_inputs((300, 513), dtype, seed=4)
    cpu = jax.devices("cpu")[0]
    gpu_results = forward_backward_every_act(*(on_gpu(a, dtype) for a in (x, bias, dy)))
    cpu_results = forward_backward_every_act(*(jax.device_put(jnp.asarray(a).astype(dtype), cpu) for a in (x, bias, dy)))
    for act in ACTIVATIONS:
        for name, g, c, summed in zip(("y", "dx", "dbias"), gpu_results[act], cpu_results[act], (1, 1, 300)):
            assert_close(to_numpy(g), to_numpy(c), dtype, summed=summed, what=f"{act} {name}")


def test_vmap_and_per_example_gradients():
    xs, _, _ = make_inputs((3, 64, 256), "float32", seed=5)
    biases, _, _ = make_inputs((3, 256), "float32", seed=6)
    xs, biases = on_gpu(xs, "float32"), on_gpu(biases, "float32")

    def per_example(f):
        loss = lambda a, b: jnp.sum(f(a, b) ** 2)  # noqa: E731
        return jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1))))(xs, biases)

    got = per_example(lambda a, b: tj.bias_act(a, b, "gelu"))
    want = per_example(lambda a, b: jax.nn.gelu(a + b, approximate=False))
    jax.tree.map(lambda g, w: assert_close(to_numpy(g), to_numpy(w), "float32", summed=64), got, want)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_mode_and_hessian_vector_products(act):
    """jax.jvp (the backward kernel as the tangent) and jax.jvp of jax.grad (the backward and
    double-backward kernels) on the GPU, in float64, against jax.nn's composition there."""
    x, bias, _ = make_inputs((33, 257), "float64", seed=7)
    x, bias = on_gpu(x, "float64"), on_gpu(bias, "float64")
    native = {"gelu": lambda v: jax.nn.gelu(v, approximate=False), "gelu_tanh": jax.nn.gelu,
              "silu": jax.nn.silu, "relu": jax.nn.relu}[act]

    def both(f):
        loss = lambda a, b: jnp.sum(jnp.cos(f(a, b)))  # noqa: E731
        tangents = (jnp.sin(x), jnp.cos(bias))
        return jax.jit(lambda a, b: (jax.jvp(f, (a, b), tangents),
                                     jax.jvp(jax.grad(loss, argnums=(0, 1)), (a, b), tangents)))(x, bias)

    got = both(lambda a, b: tj.bias_act(a, b, act))
    want = both(lambda a, b: native(a + b))
    jax.tree.map(lambda g, w: assert_close(to_numpy(g), to_numpy(w), "float64", summed=33), got, want)
