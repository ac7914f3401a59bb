"""The TensorFlow binding on the CPU: eager and tf.function, against the float64 reference."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)

from cases import ACTIVATIONS, DTYPES, SHAPES, SPECIAL_X, make_inputs, rows_of  # noqa: E402
from tolerances import assert_close  # noqa: E402
from twinop import reference  # noqa: E402


def to_tf(values, dtype_name):
    return tf.cast(tf.constant(values, tf.float64), dtype_name)


def to_numpy(t):
    return tf.cast(t, tf.float64).numpy()


def forward_backward(x, bias, dy, act):
    with tf.GradientTape() as tape:
        tape.watch([x, bias])
        y = ttf.bias_act(x, bias, act)
    dx, dbias = tape.gradient(y, [x, bias], output_gradients=dy)
    return y, dx, dbias


# One trace per dtype and activation, its shapes generalized after the first (96 traces otherwise);
# the shape tests below check what a trace infers from known and unknown dimensions.
forward_backward_graph = tf.function(forward_backward, reduce_retracing=True)


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_and_backward_match_reference(act, dtype, shape, mode):
    x, bias, dy = make_inputs(shape, dtype)
    run = forward_backward if mode == "eager" else forward_backward_graph
    y, dx, dbias = run(to_tf(x, dtype), to_tf(bias, dtype), to_tf(dy, dtype), act)
    assert y.dtype == dtype and y.shape == shape
    want_dx, want_dbias = reference.bias_act_backward(dy, x, bias, act)
    assert_close(to_numpy(y), reference.bias_act(x, bias, act), dtype, what="y")
    assert_close(to_numpy(dx), want_dx, dtype, what="dx")
    assert_close(to_numpy(dbias), want_dbias, dtype, summed=rows_of(shape), what="dbias")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_compute_gradient_float64(act):
    x, bias, _ = make_inputs((3, 5), "float64", seed=1)
    if act == "relu":  # relu has no derivative at 0: keep x + bias away from it
        x = np.where(np.abs(x + bias) < 0.1, x + 0.5, x)
    theoretical, numerical = tf.test.compute_gradient(lambda a, b: ttf.bias_act(a, b, act),
                                                      [tf.constant(x), tf.constant(bias)])
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, rtol=1e-6, atol=1e-6)


def test_unknown_dimensions_in_tf_function():
    f = tf.function(lambda x, b: ttf.bias_act(x, b, "gelu"),
                    input_signature=[tf.TensorSpec([None, None, 8], tf.float32), tf.TensorSpec([None], tf.float32)])
    concrete = f.get_concrete_function()
    assert concrete.structured_outputs.shape.as_list() == [None, None, 8]  # features merged from x
    x, bias, _ = make_inputs((2, 3, 8), "float32")
    assert_close(to_numpy(f(to_tf(x, "float32"), to_tf(bias, "float32"))), reference.bias_act(x, bias, "gelu"), "float32")


def test_shape_inference_takes_features_from_bias():
    f = tf.function(lambda x, b: ttf.bias_act(x, b),
                    input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([5], tf.float32)])
    assert f.get_concrete_function().structured_outputs.shape.as_list() == [None, 5]


def test_transposed_input():
    x, bias, _ = make_inputs((6, 9), "float32")
    xt = tf.transpose(to_tf(x, "float32"))
    assert_close(to_numpy(ttf.bias_act(xt, to_tf(bias[:6], "float32"))), reference.bias_act(x.T, bias[:6], "gelu"),
                 "float32")


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_input(dtype):
    x, bias = tf.zeros((0, 5), dtype), tf.ones(5, dtype)
    y, dx, dbias = forward_backward(x, bias, tf.zeros((0, 5), dtype), "gelu")
    assert y.shape == (0, 5) and dx.shape == (0, 5)
    np.testing.assert_array_equal(to_numpy(dbias), np.zeros(5))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nan_and_inf_propagate_as_the_reference(act):
    bias = np.zeros(SPECIAL_X.shape[-1])
    y, dx, _ = forward_backward(tf.constant(SPECIAL_X), tf.constant(bias), tf.ones_like(SPECIAL_X), act)
    assert_close(y.numpy(), reference.bias_act(SPECIAL_X, bias, act), "float64")
    assert_close(dx.numpy(), reference.bias_act_backward(np.ones_like(SPECIAL_X), SPECIAL_X, bias, act)[0], "float64")


SHAPE_ERRORS = (tf.errors.InvalidArgumentError, ValueError)  # eager / graph construction
BAD_INPUTS = [
    # (x, bias, act, exception, words the message must contain)
    (np.ones((2, 3), np.float32), np.ones(4, np.float32), "gelu", SHAPE_ERRORS, ["bias", "3"]),
    (np.ones((2, 3), np.float32), np.ones((3, 1), np.float32), "gelu", SHAPE_ERRORS, ["bias", "1-D"]),
    (np.float32(1.0), np.ones(1, np.float32), "gelu", SHAPE_ERRORS, ["x", "dimension"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float64), "gelu", TypeError, ["bias", "dtype"]),
    (np.ones((2, 3), np.int32), np.ones(3, np.int32), "gelu", TypeError, ["x", "int32"]),
    (np.ones((2, 3), np.float32), np.ones(3, np.float32), "tanh", SHAPE_ERRORS, ["act", "gelu_tanh"]),
]


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
@pytest.mark.parametrize("x,bias,act,error,words", BAD_INPUTS)
def test_bad_input_raises_and_leaves_inputs_unchanged(x, bias, act, error, words, mode):
    x_before, bias_before = np.copy(x), np.copy(bias)
    xt, bt = tf.Variable(x), tf.Variable(bias)
    call = lambda: ttf.bias_act(xt, bt, act)  # noqa: E731
    with pytest.raises(error) as info:
        call() if mode == "eager" else tf.function(call)()
    assert all(w in str(info.value) for w in words), str(info.value)
    np.testing.assert_array_equal(xt.numpy(), x_before)
    np.testing.assert_array_equal(bt.numpy(), bias_before)


def test_grad_op_rejects_dy_of_another_shape():
    with pytest.raises(SHAPE_ERRORS, match="dy"):
        ttf._ops.twinop_bias_act_grad(tf.ones((3, 3)), tf.ones((2, 3)), tf.ones(3), act="gelu")


def test_grad_shape_takes_dbias_size_from_bias_when_x_rank_is_unknown():
    spec = tf.TensorSpec(None, tf.float32)
    f = tf.function(lambda dy, x, b: ttf._ops.twinop_bias_act_grad(dy, x, b, act="gelu"),
                    input_signature=[spec, spec, tf.TensorSpec([16], tf.float32)])
    dx, dbias = f.get_concrete_function().structured_outputs
    assert dx.shape.rank is None and dbias.shape.as_list() == [16]
