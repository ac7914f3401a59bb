"""twinop.tf.rms_norm and add_rms_norm in TensorFlow's machinery, against the composition
x * tf.math.rsqrt(tf.reduce_mean(x * x, -1, keepdims=True) + eps) * (w + offset) and
keras.layers.RMSNormalization in float64: every transform of the autodiff table (nested tapes,
tf.autodiff.ForwardAccumulator, tape.jacobian, Hessians three ways, third order), eager and in
tf.function; the raw ops' rstd output differentiated; shapes and errors at trace time; the Keras layer."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)

import keras  # noqa: E402

from test_tf_autodiff import (  # noqa: E402  (the transforms and the comparison, as bias_act's)
    ATOL, RTOL, assert_same, both_modes, hessian_reverse_over_reverse, hvp_forward_over_reverse,
    hvp_reverse_over_forward)
from tolerances import TOLERANCE  # noqa: E402

EPS = float(np.float32(1e-5))  # TensorFlow's float attrs are 32-bit: the eps the op holds
OFFSET = 0.5
ERRORS = (tf.errors.InvalidArgumentError, ValueError)  # eager / graph construction


def composition(x, w, eps=EPS, offset=OFFSET):
    return x * tf.math.rsqrt(tf.reduce_mean(x * x, -1, keepdims=True) + eps) * (w + offset)


def ours(x, w, eps=EPS, offset=OFFSET):
    return ttf.rms_norm(x, w, eps, offset=offset)


def add_ours(x, r, w):
    return ttf.add_rms_norm(x, r, w, EPS, offset=OFFSET)


def add_composition(x, r, w):
    s = x + r
    return composition(s, w), s


def inputs(shape=(4, 7), seed=0):
    """float64 (x, w, r): rows of different scales, a weight away from zero."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * np.linspace(0.5, 2.0, shape[-1])
    return tuple(tf.constant(a) for a in (x, rng.normal(size=shape[-1:]), rng.normal(size=shape)))


# Each op as a function of (x, w) for the transforms: add_rms_norm's residual is cos(x), and both
# its outputs count (y + s), so the gradients reaching the residual and s are tested too.
FUNCTIONS = {
    "rms_norm": (ours, composition),
    "add_rms_norm": (lambda x, w: sum(add_ours(x, tf.cos(x), w)), lambda x, w: sum(add_composition(x, tf.cos(x), w))),
}


MODES = ["eager", "tf.function"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", FUNCTIONS)
def test_first_order(op, mode):
    x, w, _ = inputs(seed=1)
    dy = tf.ones_like(x) * tf.range(1.0, x.shape[-1] + 1, dtype=tf.float64)

    def forward_backward(fn, x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = fn(x, w)
        return (y, *tape.gradient(y, [x, w], output_gradients=dy))

    run = both_modes(forward_backward)[mode]
    assert_same(run(FUNCTIONS[op][0], x, w), run(FUNCTIONS[op][1], x, w))


def test_compute_gradient():
    x, w, r = inputs((3, 5), seed=2)
    for fn, args in ((ours, [x, w]), (lambda *a: add_ours(*a)[0], [x, r, w])):
        theoretical, numerical = tf.test.compute_gradient(fn, args)
        for t, n in zip(theoretical, numerical):
            np.testing.assert_allclose(t, n, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", FUNCTIONS)
def test_gradient_penalty_with_nested_tapes(op, mode):
    x, w, _ = inputs(seed=3)

    def step(fn, x, w):
        with tf.GradientTape() as outer:
            outer.watch([x, w])
            with tf.GradientTape() as inner:
                inner.watch([x, w])
                y = fn(x, w)
                loss = tf.reduce_sum(tf.sin(y))
            gx, gw = inner.gradient(loss, [x, w])
            penalty = loss + tf.reduce_sum(gx**2) + tf.reduce_sum(gw**2)
        return outer.gradient(penalty, [x, w])

    run = both_modes(step)[mode]
    assert_same(run(FUNCTIONS[op][0], x, w), run(FUNCTIONS[op][1], x, w))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", FUNCTIONS)
def test_forward_accumulator_jvp(op, mode):
    x, w, _ = inputs(seed=4)
    t_x, t_w, _ = inputs(seed=5)

    def jvp(fn, x, w):
        with tf.autodiff.ForwardAccumulator([x, w], [t_x, t_w]) as acc:
            y = fn(x, w)
        return acc.jvp(y)

    run = both_modes(jvp)[mode]
    assert_same(run(FUNCTIONS[op][0], x, w), run(FUNCTIONS[op][1], x, w))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", FUNCTIONS)
def test_tape_jacobian(op, mode):
    x, w, _ = inputs((3, 5), seed=6)

    def jacobians(fn, x, w):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, w])
            y = fn(x, w)
        return tape.jacobian(y, x), tape.jacobian(y, w)

    run = both_modes(jacobians)[mode]
    assert_same(run(FUNCTIONS[op][0], x, w), run(FUNCTIONS[op][1], x, w))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", FUNCTIONS)
def test_hessians(op, mode):
    x, w, _ = inputs((2, 4), seed=7)  # small: tape.jacobian runs the custom ops once per element
    v, _, _ = inputs((2, 4), seed=8)
    for compute, args in ((hessian_reverse_over_reverse, (x,)), (hvp_forward_over_reverse, (x, v)),
                          (hvp_reverse_over_forward, (x, v))):
        run = both_modes(lambda fn, *a, compute=compute: compute(lambda a: tf.reduce_sum(tf.sin(fn(a, w))), *a))[mode]
        assert_same(run(FUNCTIONS[op][0], *args), run(FUNCTIONS[op][1], *args))


def third_order(fn, x, w):
    """Reverse over reverse over reverse, in x and w."""
    with tf.GradientTape() as t3:
        t3.watch([x, w])
        with tf.GradientTape() as t2:
            t2.watch([x, w])
            with tf.GradientTape() as t1:
                t1.watch([x, w])
                y = tf.reduce_sum(tf.sin(fn(x, w)))
            g = tf.add_n([tf.reduce_sum(t**2) for t in t1.gradient(y, [x, w])])
        h = tf.add_n([tf.reduce_sum(tf.sin(t)) for t in t2.gradient(g, [x, w])])
    return t3.gradient(h, [x, w])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", FUNCTIONS)
def test_third_order_is_exact(op, mode):
    """The backward ops' gradients are TensorFlow ops, which TensorFlow differentiates again."""
    x, w, _ = inputs((2, 4), seed=9)
    run = both_modes(third_order)[mode]
    assert_same(run(FUNCTIONS[op][0], x, w), run(FUNCTIONS[op][1], x, w))


def rstd_composition(x, eps=EPS):
    return tf.math.rsqrt(tf.reduce_mean(x * x, -1) + eps)


@pytest.mark.parametrize("signature", ["static shapes", "unknown batch"])
def test_the_raw_ops_rstd_output_is_differentiated(signature):
    """A gradient arriving at the raw op's rstd reaches x through rstd's dependence on it, with
    static shapes and without (where the tape's zeros for an unused rstd are a Fill)."""
    x, w, r = inputs((4, 6), seed=10)
    ops = ttf._ops

    def losses(x, w, r):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, w, r])
            y, rstd = ops.twinop_rms_norm(x, w, U=tf.float64, eps=EPS, offset=OFFSET)
            y_add, s, rstd_add = ops.twinop_add_rms_norm(x, r, w, U=tf.float64, eps=EPS, offset=OFFSET)
            want, want_rstd = composition(x, w), rstd_composition(x)
            want_add, want_rstd_add = composition(x + r, w), rstd_composition(x + r)
            pairs = [(tf.reduce_sum(y) + tf.reduce_sum(tf.sin(rstd)),
                      tf.reduce_sum(want) + tf.reduce_sum(tf.sin(want_rstd))),
                     (tf.reduce_sum(y), tf.reduce_sum(want)),  # zeros arrive at rstd
                     (tf.reduce_sum(tf.sin(rstd_add)) + tf.reduce_sum(y_add * s),
                      tf.reduce_sum(tf.sin(want_rstd_add)) + tf.reduce_sum(want_add * (x + r)))]
        return [(tape.gradient(a, [x, w, r], unconnected_gradients="zero"),
                 tape.gradient(b, [x, w, r], unconnected_gradients="zero")) for a, b in pairs]

    eager = losses(x, w, r)
    spec = [tf.TensorSpec([None, 6] if signature == "unknown batch" else [4, 6], tf.float64),
            tf.TensorSpec([6], tf.float64), tf.TensorSpec([None, 6] if signature == "unknown batch" else [4, 6],
                                                          tf.float64)]
    graph = tf.function(losses, input_signature=spec)(x, w, r)
    for got, want in eager + graph:
        assert_same(got, want)


@pytest.mark.parametrize("shape", [[8, 16], [None, 16]], ids=["static shapes", "unknown batch"])
def test_a_backward_through_rms_norm_reads_x_only_in_its_two_kernels(shape):
    """The zeros the tape passes for the unused rstd (a constant, or a Fill where the batch is
    unknown) add no pass over x."""
    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32), tf.TensorSpec([16], tf.float32)])
    def step(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = ttf.rms_norm(x, w)
        return tape.gradient(y, [x, w])

    graph = step.get_concrete_function().graph
    x = graph.inputs[0]
    assert sorted(op.type for op in graph.get_operations() if any(t is x for t in op.inputs)) == [
        "Twinop>RmsNorm", "Twinop>RmsNormGrad"]


# ---- shapes and errors at trace time ----


def test_shapes_with_an_unknown_batch_and_unknown_rank():
    f = tf.function(lambda x, w: ttf._ops.twinop_rms_norm(x, w), input_signature=[
        tf.TensorSpec([None, None, 8], tf.float32), tf.TensorSpec([None], tf.float32)])
    y, rstd = f.get_concrete_function().structured_outputs
    assert y.shape.as_list() == [None, None, 8] and rstd.shape.as_list() == [None, None]
    g = tf.function(lambda x, w: ttf._ops.twinop_add_rms_norm(x, x, w),
                    input_signature=[tf.TensorSpec(None, tf.float32), tf.TensorSpec([5], tf.float32)])
    y, s, rstd = g.get_concrete_function().structured_outputs
    assert y.shape.rank is None and s.shape.rank is None and rstd.shape.rank is None
    assert g(tf.ones((2, 3, 5)), tf.ones(5))[2].shape == (2, 3)
    h = tf.function(lambda dy, x, rstd, w: ttf._ops.twinop_rms_norm_grad(dy, x, rstd, w), input_signature=[
        tf.TensorSpec(None, tf.float32), tf.TensorSpec(None, tf.float32), tf.TensorSpec([None], tf.float32),
        tf.TensorSpec([16], tf.float32)])
    dx, dweight = h.get_concrete_function().structured_outputs
    assert dx.shape.rank is None and dweight.shape.as_list() == [16]


def test_one_trace_serves_every_batch_size():
    @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.bfloat16), tf.TensorSpec([16], tf.float32)])
    def f(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = ttf.rms_norm(x, w)
        dx, dw = tape.gradient(y, [x, w])
        assert [t.shape.as_list() for t in (y, dx, dw)] == [[None, 16], [None, 16], [16]]  # at trace time
        return y, dw

    for batch in (3, 5):
        y, dw = f(tf.ones((batch, 16), tf.bfloat16), tf.ones(16))
        assert y.shape == (batch, 16) and y.dtype == tf.bfloat16 and dw.dtype == tf.float32
    assert f.experimental_get_tracing_count() == 1


F32 = tf.float32
# (x, weight, eps, offset, error, words the message must contain)
BAD_INPUTS = {
    "weight of another length": (tf.ones((2, 3)), tf.ones(4), 1e-6, 0.0, ERRORS, ["weight", "3", "4"]),
    "weight not 1-D": (tf.ones((2, 3)), tf.ones((3, 1)), 1e-6, 0.0, ERRORS, ["weight", "1-D"]),
    "x of 0 dimensions": (tf.constant(1.0), tf.ones(1), 1e-6, 0.0, ERRORS, ["x", "dimension"]),
    "float64 weight, float32 x": (tf.ones((2, 3)), tf.ones(3, tf.float64), 1e-6, 0.0, TypeError, ["weight", "dtype"]),
    "float16 weight, bfloat16 x": (tf.ones((2, 3), tf.bfloat16), tf.ones(3, tf.float16), 1e-6, 0.0, TypeError,
                                   ["weight", "float32"]),
    "integer x": (tf.ones((2, 3), tf.int32), tf.ones(3, tf.int32), 1e-6, 0.0, TypeError, ["x", "int32"]),
    "negative eps": (tf.ones((2, 3)), tf.ones(3), -1e-6, 0.0, ERRORS, ["eps must be finite and >= 0", "-1e-06"]),
    "NaN eps": (tf.ones((2, 3)), tf.ones(3), float("nan"), 0.0, ERRORS, ["eps", "nan"]),
    "infinite offset": (tf.ones((2, 3)), tf.ones(3), 1e-6, float("inf"), ERRORS, ["offset must be finite"]),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_naming_the_argument_and_leaves_inputs_unchanged(case, mode):
    """Eagerly the kernels raise InvalidArgumentError; a tf.function raises ValueError while it is
    traced (the shape functions); a dtype is TypeError either way (checked in Python first)."""
    x, w, eps, offset, error, words = BAD_INPUTS[case]
    xv, wv = tf.Variable(x), tf.Variable(w)
    before = xv.numpy().copy(), wv.numpy().copy()
    for call in (lambda: ttf.rms_norm(xv, wv, eps, offset=offset),
                 lambda: ttf.add_rms_norm(xv, xv, wv, eps, offset=offset)):
        with pytest.raises(error) as info:
            call() if mode == "eager" else tf.function(call)()
        assert all(word in str(info.value) for word in words), str(info.value)
        if mode == "tf.function" and error is ERRORS:
            assert isinstance(info.value, ValueError)  # at trace time, not when it runs
    np.testing.assert_array_equal(xv.numpy(), before[0])
    np.testing.assert_array_equal(wv.numpy(), before[1])


def test_residual_and_the_raw_ops_arguments_are_checked():
    x, w = tf.ones((2, 3)), tf.ones(3)
    with pytest.raises(TypeError, match=r"residual must have the dtype of x \(float32\); got float64"):
        ttf.add_rms_norm(x, tf.ones((2, 3), tf.float64), w)
    with pytest.raises(ERRORS, match="residual must have the shape of x"):
        ttf.add_rms_norm(x, tf.ones((2, 4)), w)
    ops = ttf._ops
    for call, words in [
        (lambda: ops.twinop_rms_norm(tf.ones((2, 3), tf.float64), tf.ones(3, tf.float64), U=tf.float32),
         "rstd must be float64 for x of double"),
        (lambda: ops.twinop_rms_norm_grad(tf.ones((3, 3)), x, tf.ones(2), w), "dy must have the shape of x"),
        (lambda: ops.twinop_rms_norm_grad(x, x, tf.ones(3), w), r"rstd must have the shape x.shape\[:-1\]"),
        (lambda: ops.twinop_add_rms_norm_grad(x, tf.ones((2, 4)), x, tf.ones(2), w), "ds must have the shape of s"),
        (lambda: ops.twinop_add_rms_norm_grad(x, x, x, tf.ones(2, tf.float64), w), "rstd must be float32 for s"),
    ]:
        for mode in MODES:
            with pytest.raises(ERRORS, match=words):
                call() if mode == "eager" else tf.function(call)()


# ---- the Keras layer ----


def keras_pair(features=7, dtype="float64", seed=11):
    """twinop.tf.RMSNorm and keras.layers.RMSNormalization(axis=-1), built with the same scale."""
    ours_layer, theirs = ttf.RMSNorm(EPS, dtype=dtype), keras.layers.RMSNormalization(axis=-1, epsilon=EPS, dtype=dtype)
    for layer in (ours_layer, theirs):
        layer.build((None, features))
    theirs.set_weights([np.random.default_rng(seed).normal(1.0, 0.5, features)])
    ours_layer.set_weights(theirs.get_weights())  # one weight, `scale`, either way
    return ours_layer, theirs


def test_layer_builds_a_ones_scale_from_the_last_dimension():
    layer = ttf.RMSNorm()
    y = layer(tf.ones((2, 3, 5)))
    assert y.shape == (2, 3, 5) and layer.compute_output_shape((None, 3, 5)) == (None, 3, 5)
    assert [(v.name, tuple(v.shape)) for v in layer.trainable_weights] == [("scale", (5,))]
    np.testing.assert_array_equal(layer.scale.numpy(), np.ones(5))
    clone = ttf.RMSNorm.from_config(ttf.RMSNorm(1e-4, offset=1.0, name="norm").get_config())
    assert (clone.epsilon, clone.offset, clone.name) == (1e-4, 1.0, "norm")
    with pytest.raises(ValueError, match="last dimension"):
        ttf.RMSNorm().build((None, None))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layer_outputs_and_gradients_match_keras_rms_normalization(dtype):
    ours_layer, theirs = keras_pair(dtype=dtype)
    x = tf.cast(inputs((3, 4, 7), seed=12)[0], dtype)

    def run(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.sin(y))
        return (y, *tape.gradient(loss, [x, layer.scale]))

    rtol, atol = (RTOL, ATOL) if dtype == "float64" else TOLERANCE["float32"]
    for got, want in zip(run(ours_layer), run(theirs)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=rtol, atol=atol * 4)


def test_layer_under_mixed_precision_keeps_a_float32_scale():
    """The kernel takes the float32 scale with bfloat16 x: y is bfloat16, dscale float32 and never
    rounded to bfloat16; the result is Keras's (which rounds the scale to bfloat16) within bfloat16's tolerance."""
    ours_layer, theirs = keras_pair(dtype="mixed_bfloat16", seed=13)
    x = tf.cast(inputs((4, 7), seed=14)[0], tf.float32)
    with tf.GradientTape() as tape:
        y = ours_layer(x)
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    (dscale,) = tape.gradient(loss, ours_layer.trainable_variables)
    assert y.dtype == tf.bfloat16 and ours_layer.scale.dtype == "float32" and dscale.dtype == tf.float32
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.cast(theirs(x), tf.float32), *TOLERANCE["bfloat16"])


def small_model(norm):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), norm, keras.layers.Dense(1)])


def test_fit_trains_as_keras_rms_normalization():
    x = np.random.default_rng(15).normal(size=(64, 6)).astype("float32")
    target = np.sin(x[:, :1])
    trained = []
    for norm in (ttf.RMSNorm(EPS), keras.layers.RMSNormalization(epsilon=EPS)):
        model = small_model(norm)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        losses = model.fit(x, target, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
        assert losses[-1] < losses[0]
        trained.append(model.get_weights())
    assert not np.allclose(trained[0][2], np.ones(8))  # the scale trained
    for ours_weight, their_weight in zip(*trained):
        np.testing.assert_allclose(ours_weight, their_weight, rtol=2e-4, atol=2e-5)


def test_keras_save_and_load_in_process(tmp_path):
    model = small_model(ttf.RMSNorm(1e-4, offset=1.0))
    model.layers[1].scale.assign(np.linspace(-0.5, 0.5, 8))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")  # no custom_objects needed
    layer = loaded.layers[1]
    assert isinstance(layer, ttf.RMSNorm) and (layer.epsilon, layer.offset) == (1e-4, 1.0)
    x = np.random.default_rng(16).normal(size=(4, 6)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
