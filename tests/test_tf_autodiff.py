"""TensorFlow autodiff beyond one backward pass, against the native composition act(x + b) in
float64: nested tapes (gradient penalty, Hessians), tf.autodiff.ForwardAccumulator (JVPs,
forward-over-reverse and reverse-over-forward), tape.jacobian eagerly and in tf.function, and
the error for third order."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)

from cases import ACTIVATIONS, make_inputs  # noqa: E402
from tolerances import NATIVE_FLOAT64  # noqa: E402

NATIVE = {
    "gelu": lambda v: tf.nn.gelu(v, approximate=False),
    "gelu_tanh": lambda v: tf.nn.gelu(v, approximate=True),
    "silu": tf.nn.silu,
    "relu": tf.nn.relu,
}
RTOL, ATOL = NATIVE_FLOAT64["tensorflow"]


def inputs(shape=(4, 7), seed=0):
    """float64 (x, bias, dy) with x + bias kept 0.1 away from relu's kink."""
    x, bias, dy = make_inputs(shape, "float64", seed)
    x = np.where(np.abs(x + bias) < 0.1, x + 0.3, x)
    return tuple(tf.constant(a) for a in (x, bias, dy))


def ours(act):
    return lambda x, bias: ttf.bias_act(x, bias, act)


def native(act):
    return lambda x, bias: NATIVE[act](x + bias)


def assert_same(got, want):
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    else:
        assert got is not None, "a gradient is missing"
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL, atol=ATOL)


def both_modes(fn):
    """fn run eagerly and inside a tf.function."""
    return {"eager": fn, "tf.function": tf.function(fn, reduce_retracing=True)}


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradient_penalty_with_nested_tapes(act, mode):
    x, bias, _ = inputs(seed=1)
    w = tf.linspace(tf.constant(0.5, tf.float64), 1.5, x.shape[-1])

    def step(fn, x, bias, w):
        with tf.GradientTape() as outer:
            outer.watch([w, bias])
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = fn(x * w, bias)
            g = inner.gradient(y, x)
            loss = tf.reduce_sum(y) + tf.reduce_sum(g**2)
        return outer.gradient(loss, [w, bias])

    run = both_modes(step)[mode]
    assert_same(run(ours(act), x, bias, w), run(native(act), x, bias, w))


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_accumulator_jvp(act, mode):
    x, bias, _ = inputs(seed=2)
    t_x, t_bias, _ = inputs(seed=3)

    def jvp(fn, x, bias):
        with tf.autodiff.ForwardAccumulator([x, bias], [t_x, t_bias]) as acc:
            y = fn(x, bias)
        return acc.jvp(y)

    run = both_modes(jvp)[mode]
    assert_same(run(ours(act), x, bias), run(native(act), x, bias))


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_tape_jacobian(act, mode):
    x, bias, _ = inputs(seed=4)

    def jacobians(fn, x, bias):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, bias])
            y = fn(x, bias)
        return tape.jacobian(y, x), tape.jacobian(y, bias)

    run = both_modes(jacobians)[mode]
    assert_same(run(ours(act), x, bias), run(native(act), x, bias))


def scalar_loss(fn, bias):
    return lambda a: tf.reduce_sum(tf.sin(fn(a, bias)))


def hessian_reverse_over_reverse(loss, x):
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = loss(x)
        g = inner.gradient(y, x)
    return outer.jacobian(g, x)


def hvp_forward_over_reverse(loss, x, v):
    with tf.autodiff.ForwardAccumulator(x, v) as acc:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = loss(x)
        g = tape.gradient(y, x)
    return acc.jvp(g)


def hvp_reverse_over_forward(loss, x, v):
    with tf.GradientTape() as tape:
        tape.watch(x)
        with tf.autodiff.ForwardAccumulator(x, v) as acc:
            y = loss(x)
        directional = acc.jvp(y)
    return tape.gradient(directional, x)


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_hessians(act, mode):
    x, bias, _ = inputs(seed=5)
    v, _, _ = inputs(seed=6)
    for compute, args in ((hessian_reverse_over_reverse, (x,)), (hvp_forward_over_reverse, (x, v)),
                          (hvp_reverse_over_forward, (x, v))):
        run = both_modes(lambda fn, *a, compute=compute: compute(scalar_loss(fn, bias), *a))[mode]
        assert_same(run(ours(act), *args), run(native(act), *args))


def third_order(x, bias):
    with tf.GradientTape() as t3:
        t3.watch(x)
        with tf.GradientTape() as t2:
            t2.watch(x)
            with tf.GradientTape() as t1:
                t1.watch(x)
                y = tf.reduce_sum(ttf.bias_act(x, bias, "gelu"))
            g = tf.reduce_sum(t1.gradient(y, x))
        h = tf.reduce_sum(t2.gradient(g, x))
    return t3.gradient(h, x)


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_third_order_is_a_clear_error(mode):
    x, bias, _ = inputs(seed=7)
    with pytest.raises(tf.errors.UnimplementedError, match="third-order derivatives are not supported"):
        both_modes(third_order)[mode](x, bias)


def test_second_order_grad_op_shapes_in_tf_function():
    spec = tf.TensorSpec([None, 8], tf.float32)
    f = tf.function(lambda g, gb, dy, x, b: ttf._ops.twinop_bias_act_grad_grad(g, gb, dy, x, b, act="silu"),
                    input_signature=[spec, tf.TensorSpec(None, tf.float32), spec, spec,
                                     tf.TensorSpec([None], tf.float32)])
    d_dy, d_x, d_bias = f.get_concrete_function().structured_outputs
    assert d_dy.shape.as_list() == d_x.shape.as_list() == [None, 8] and d_bias.shape.as_list() == [8]


def test_second_order_grad_op_rejects_bad_shapes():
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="g must have the shape of x"):
        ttf._ops.twinop_bias_act_grad_grad(tf.ones((3, 3)), tf.ones(3), tf.ones((2, 3)), tf.ones((2, 3)),
                                           tf.ones(3), act="gelu")
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="g_bias must have the shape of bias"):
        ttf._ops.twinop_bias_act_grad_grad(tf.ones((2, 3)), tf.ones(4), tf.ones((2, 3)), tf.ones((2, 3)),
                                           tf.ones(3), act="gelu")
