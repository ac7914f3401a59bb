"""The double-backward core function (bias_act_double_backward_cpu) through each binding's raw
op: the numpy function, torch.ops.twinop.bias_act_double_backward, Twinop>BiasActGradGrad and
JAX's twinop_bias_act_double_backward call, against the float64 reference, on every dtype,
activation and shape."""
import numpy as np
import pytest

import twinop.numpy as tn
from cases import ACTIVATIONS, DTYPES, SHAPES, SPECIAL_X, make_double_backward_inputs, numpy_dtype, rows_of
from tolerances import assert_close
from twinop import reference


def run_numpy(g, g_bias, dy, x, bias, act, dtype):
    arrays = [a.astype(numpy_dtype(dtype)) for a in (g, g_bias, dy, x, bias)]
    return tn.bias_act_double_backward(arrays[0], *arrays[2:], act, g_bias=arrays[1])


def run_torch(g, g_bias, dy, x, bias, act, dtype):
    torch = pytest.importorskip("torch")
    pytest.importorskip("twinop.torch", exc_type=ImportError)
    tensors = [torch.tensor(a, dtype=getattr(torch, dtype)) for a in (g, g_bias, dy, x, bias)]
    return [t.to(torch.float64).numpy() for t in torch.ops.twinop.bias_act_double_backward(*tensors, act)]


def run_tf(g, g_bias, dy, x, bias, act, dtype):
    tf = pytest.importorskip("tensorflow")
    ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)
    tensors = [tf.cast(tf.constant(a), dtype) for a in (g, g_bias, dy, x, bias)]
    return [tf.cast(t, tf.float64).numpy() for t in ttf._ops.twinop_bias_act_grad_grad(*tensors, act=act)]


def run_jax(g, g_bias, dy, x, bias, act, dtype):
    jax = pytest.importorskip("jax")
    pytest.importorskip("twinop.jax", exc_type=ImportError)
    from twinop.jax import _bias_act_ffi

    with jax.enable_x64(True):  # for float64, in this call alone (users run with it off)
        arrays = [jax.numpy.asarray(a, dtype=dtype) for a in (g, g_bias, dy, x, bias)]
        return [np.asarray(t, np.float64) for t in _bias_act_ffi.double_backward(*arrays, act=act)]


BINDINGS = {"numpy": run_numpy, "torch": run_torch, "tensorflow": run_tf, "jax": run_jax}


def check(binding, g, g_bias, dy, x, bias, act, dtype):
    got = BINDINGS[binding](g, g_bias, dy, x, bias, act, dtype)
    want = reference.bias_act_double_backward(g, dy, x, bias, act, g_bias=g_bias)
    assert_close(got[0], want[0], dtype, what="d_dy")
    assert_close(got[1], want[1], dtype, what="d_x")
    assert_close(got[2], want[2], dtype, summed=rows_of(x.shape), what="d_bias")


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_matches_reference(act, dtype, shape, binding):
    x, bias, dy, g, g_bias = make_double_backward_inputs(shape, dtype)
    check(binding, g, g_bias, dy, x, bias, act, dtype)


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_input_gives_zero_d_bias(binding, dtype):
    x, bias, dy, g, g_bias = make_double_backward_inputs((0, 5), dtype)
    d_dy, d_x, d_bias = BINDINGS[binding](g, g_bias, dy, x, bias, "gelu", dtype)
    assert d_dy.shape == d_x.shape == (0, 5)
    np.testing.assert_array_equal(d_bias, np.zeros(5))


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nan_and_inf_propagate_as_the_reference(binding, act):
    ones = np.ones_like(SPECIAL_X)
    zeros_bias = np.zeros(SPECIAL_X.shape[-1])
    for g, dy in ((ones, ones), (ones, SPECIAL_X), (SPECIAL_X, ones)):
        check(binding, g, zeros_bias, dy, SPECIAL_X, zeros_bias, act, "float64")


def test_g_bias_is_added_to_every_row_of_g():
    x, bias, dy, g, g_bias = make_double_backward_inputs((6, 11), "float64", seed=4)
    with_g_bias = tn.bias_act_double_backward(g, dy, x, bias, "silu", g_bias=g_bias)
    folded = tn.bias_act_double_backward(g + g_bias, dy, x, bias, "silu")
    for a, b in zip(with_g_bias, folded):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_non_contiguous_inputs(act):
    x, bias, dy, g, g_bias = make_double_backward_inputs((40, 40), "float32", seed=5)
    views = [a.astype(np.float32).T for a in (x, dy, g)]
    assert not any(v.flags.c_contiguous for v in views)
    got = tn.bias_act_double_backward(views[2], views[1], views[0], bias.astype(np.float32), act,
                                      g_bias=g_bias.astype(np.float32))
    want = reference.bias_act_double_backward(g.T, dy.T, x.T, bias, act, g_bias=g_bias)
    for name, a, w in zip(("d_dy", "d_x", "d_bias"), got, want):
        assert_close(a, w, "float32", summed=40 if name == "d_bias" else 1, what=name)


def test_d_bias_is_bit_identical_for_any_thread_count():
    torch = pytest.importorskip("torch")
    pytest.importorskip("twinop.torch", exc_type=ImportError)
    inputs = [torch.tensor(a, dtype=torch.float32)
              for a in make_double_backward_inputs((512, 300), "float32", seed=6)]
    x, bias, dy, g, g_bias = inputs
    threads = torch.get_num_threads()
    try:
        results = []
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            results.append(torch.ops.twinop.bias_act_double_backward(g, g_bias, dy, x, bias, "gelu"))
    finally:
        torch.set_num_threads(threads)
    for result in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(result, results[0]))


BAD_INPUTS = [
    # (what is wrong, keyword changes to good (g, g_bias, dy, x, bias), exception, words)
    ("g shape", {"g": np.ones((3, 3))}, ValueError, ["g must have the shape of x"]),
    ("g dtype", {"g": np.ones((2, 3), np.float32)}, TypeError, ["g must have the dtype of x"]),
    ("g_bias shape", {"g_bias": np.ones(4)}, ValueError, ["g_bias must have the shape of bias"]),
    ("g_bias dtype", {"g_bias": np.ones(3, np.float32)}, TypeError, ["g_bias must have the dtype of bias"]),
    ("dy shape", {"dy": np.ones((2, 4))}, ValueError, ["dy"]),
    ("bias size", {"bias": np.ones(4), "g_bias": np.ones(4)}, ValueError, ["bias", "3"]),
]


@pytest.mark.parametrize("what,changes,error,words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_raises_and_leaves_inputs_unchanged(what, changes, error, words):
    args = {"g": np.ones((2, 3)), "g_bias": np.ones(3), "dy": np.ones((2, 3)), "x": np.ones((2, 3)),
            "bias": np.ones(3), **changes}
    before = {k: v.copy() for k, v in args.items()}
    with pytest.raises(error) as info:
        tn.bias_act_double_backward(args["g"], args["dy"], args["x"], args["bias"], "gelu", g_bias=args["g_bias"])
    assert all(w in str(info.value) for w in words), str(info.value)
    for k, v in args.items():
        np.testing.assert_array_equal(v, before[k])
