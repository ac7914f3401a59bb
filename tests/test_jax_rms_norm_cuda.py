"""RMSNorm's JAX CUDA handlers under jax.jit on a GPU: every dtype pair against the float64
reference (float32 weights with half x included), add_rms_norm, wide rows, empty inputs,
bit-reproducible dweight, agreement with the CPU handlers, and the transforms (grad, jvp, vmap,
second order) against the composition. Skipped without a JAX GPU backend."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
try:
    GPU = jax.devices("gpu")[0]
except RuntimeError:  # no GPU backend in this jax install, or no GPU
    pytest.skip("no JAX GPU backend", allow_module_level=True)

import jax.numpy as jnp  # noqa: E402

import twinop.jax as tj  # noqa: E402  (imported only where a GPU exists)
from cases import DTYPE_PAIRS, make_rms_norm_inputs, round_to, rows_of  # noqa: E402
from tolerances import assert_close  # noqa: E402
from twinop import _build_info, reference  # noqa: E402

EPS, OFFSET = 1e-5, 0.5
SHAPES = [(1, 1), (7, 33), (64, 4096), (3, 5, 1000), (5, 65_537), (2, 262_144)]

pytestmark = pytest.mark.usefixtures("jax_float64")  # float64 arrays in this module (conftest.py)


@pytest.fixture(autouse=True)
def built_with_cuda():
    """A GPU without twinop's CUDA handlers is a failed build, not a reason to skip."""
    assert _build_info.WITH_CUDA, "twinop was built without CUDA: rebuild with TWINOP_CUDA=ON"


def on(device, values, dtype_name):
    return jax.device_put(jnp.asarray(values, jnp.float64).astype(dtype_name), device)


def to_numpy(a):
    return np.asarray(jnp.asarray(a, jnp.float64))


@jax.jit
def forward_backward(x, residual, w, dy, ds):
    """{name: array}: rms_norm's y, dx, dweight and add_rms_norm's y, s, dx, dweight, in one program."""
    y, pullback = jax.vjp(lambda x, w: tj.rms_norm(x, w, EPS, offset=OFFSET), x, w)
    (y_add, s), add_pullback = jax.vjp(lambda x, r, w: tj.add_rms_norm(x, r, w, EPS, offset=OFFSET), x, residual, w)
    dx_add, _, dweight_add = add_pullback((dy, ds))
    return dict(zip(("y", "dx", "dweight", "y_add", "s", "dx_add", "dweight_add"),
                    (y, *pullback(dy), y_add, s, dx_add, dweight_add)))


def expected(x, residual, w, dy, ds, dtype):
    compute = np.float64 if dtype == "float64" else np.float32
    s = round_to((x.astype(compute) + residual.astype(compute)).astype(np.float64), dtype)
    y, _ = reference.rms_norm(x, w, EPS, OFFSET)
    dx, dweight = reference.rms_norm_backward(dy, x, w, EPS, OFFSET)
    y_add, _ = reference.rms_norm(s, w, EPS, OFFSET)
    dx_add, dweight_add = reference.rms_norm_backward(dy, s, w, EPS, OFFSET)
    return {"y": y, "dx": dx, "dweight": dweight, "y_add": y_add, "s": s, "dx_add": dx_add + ds,
            "dweight_add": dweight_add}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids="-".join)
def test_matches_reference(dtypes, shape):
    dtype, weight_dtype = dtypes
    x, w, dy, residual, ds = make_rms_norm_inputs(shape, dtype, weight_dtype, seed=1)
    got = forward_backward(*(on(GPU, a, d) for a, d in ((x, dtype), (residual, dtype), (w, weight_dtype),
                                                          (dy, dtype), (ds, dtype))))
    want = expected(x, residual, w, dy, ds, dtype)
    compute = "float64" if dtype == "float64" else "float32"
    for name, array in got.items():
        assert array.devices() == {GPU}
        summed = name.startswith("dweight")
        assert array.dtype == (weight_dtype if summed else dtype), name
        assert_close(to_numpy(array), want[name], compute if summed and weight_dtype == "float32" else
                     (weight_dtype if summed else dtype), summed=rows_of(shape) if summed else 1, what=name)


def test_the_program_calls_the_cuda_handlers():
    x = on(GPU, np.ones((4, 8)), "float32")
    grad = jax.grad(lambda a, b: jnp.sum(tj.rms_norm(a, b)), argnums=(0, 1))
    hlo = jax.jit(grad).lower(x, x[0]).compile().as_text()
    assert 'custom_call_target="twinop_rms_norm"' in hlo and 'custom_call_target="twinop_rms_norm_backward"' in hlo


@pytest.mark.parametrize("shape", [(0, 16), (4, 0), (0,)], ids=str)
def test_empty_input(shape):
    """No rows: no workspace, and dweight is zeros."""
    zeros = on(GPU, np.zeros(shape), "float32")
    got = forward_backward(zeros, zeros, on(GPU, np.ones(shape[-1:]), "float32"), zeros, zeros)
    assert got["y"].shape == shape and got["dx"].shape == shape
    np.testing.assert_array_equal(to_numpy(got["dweight"]), np.zeros(shape[-1:]))


@pytest.mark.parametrize("dtypes", [("bfloat16", "float32"), ("float32", "float32")], ids="-".join)
def test_dweight_is_bit_reproducible(dtypes):
    x, w, dy, residual, ds = make_rms_norm_inputs((8192, 1024), *dtypes, seed=3)
    arrays = [on(GPU, a, d) for a, d in ((x, dtypes[0]), (residual, dtypes[0]), (w, dtypes[1]), (dy, dtypes[0]),
                                         (ds, dtypes[0]))]
    first = forward_backward(*arrays)
    for _ in range(3):
        again = forward_backward(*arrays)
        for name in ("dweight", "dweight_add"):
            np.testing.assert_array_equal(to_numpy(first[name]), to_numpy(again[name]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gpu_and_cpu_handlers_agree(dtype):
    values = make_rms_norm_inputs((300, 513), dtype, dtype, seed=4)
    order = (0, 3, 1, 2, 4)  # x, residual, weight, dy, ds
    gpu = forward_backward(*(on(GPU, values[i], dtype) for i in order))
    cpu = forward_backward(*(on(jax.devices("cpu")[0], values[i], dtype) for i in order))
    for name in gpu:
        summed = 300 if "dweight" in name else 1
        assert_close(to_numpy(gpu[name]), to_numpy(cpu[name]), dtype, summed=summed, what=name)


def composition(x, w):
    return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + EPS) * (w + OFFSET)


def test_transforms_match_the_composition():
    """grad, jvp, per-example gradients with batched weights, and a Hessian-vector product, in
    float64 on the GPU."""
    x, w = (on(GPU, a, "float64") for a in make_rms_norm_inputs((3, 64, 257), "float64", "float64", seed=6)[:2])
    ws = on(GPU, np.random.default_rng(7).normal(1.0, 0.5, (3, 257)), "float64")

    def transforms(f):
        loss = lambda a, b: jnp.sum(jnp.cos(f(a, b)) * a)  # noqa: E731
        grad = jax.grad(loss, argnums=(0, 1))
        return jax.jit(lambda x, w, ws: (grad(x, w), jax.jvp(f, (x, w), (jnp.sin(x), jnp.cos(w))),
                                         jax.vmap(grad)(x, ws), jax.jvp(grad, (x, w), (jnp.sin(x), jnp.cos(w)))))(
            x, w, ws)

    got = transforms(lambda a, b: tj.rms_norm(a, b, EPS, offset=OFFSET))
    want = transforms(composition)
    jax.tree.map(lambda g, v: assert_close(to_numpy(g), to_numpy(v), "float64", summed=192), got, want)
