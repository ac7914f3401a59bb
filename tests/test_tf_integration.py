"""The TensorFlow op as a native op: the Keras layer (fit, save, load), SavedModel loaded in a
fresh process (RMSNorm's too), tf.function shapes, XLA, device placement and the worked example."""
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)

import keras  # noqa: E402

import twinop  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = {  # each activation as TF computes it natively
    "gelu": lambda v: tf.nn.gelu(v, approximate=False),
    "gelu_tanh": lambda v: tf.nn.gelu(v, approximate=True),
    "silu": tf.nn.silu,
    "relu": tf.nn.relu,
}


def random(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def mlp(act="gelu"):
    """Dense(use_bias=False) + BiasAct: the fused replacement of Dense(activation=act)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, use_bias=False), ttf.BiasAct(act),
                              keras.layers.Dense(1)])
    model.layers[1].bias.assign(random(8, seed=1))  # not zeros, so a lost bias shows
    return model


# the Keras layer


def test_layer_builds_a_zero_bias_from_the_last_dimension():
    layer = ttf.BiasAct("relu")
    y = layer(tf.ones((2, 3, 5)))
    assert y.shape == (2, 3, 5) and layer.compute_output_shape((None, 3, 5)) == (None, 3, 5)
    assert [w.shape for w in layer.trainable_weights] == [(5,)]
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(5))


@pytest.mark.parametrize("act", twinop.ACTIVATIONS)
def test_dense_without_bias_then_bias_act_equals_dense_with_activation(act):
    model = mlp(act)
    dense = keras.layers.Dense(8)
    dense.build((None, 6))
    dense.set_weights([model.layers[0].kernel.numpy(), model.layers[1].bias.numpy()])
    x = random(5, 6)
    np.testing.assert_allclose(model.layers[1](model.layers[0](x)), NATIVE[act](dense(x)), rtol=2e-5, atol=2e-6)


def test_layer_config_round_trips():
    layer = ttf.BiasAct("silu", name="fused")
    clone = ttf.BiasAct.from_config(layer.get_config())
    assert (clone.act, clone.name) == ("silu", "fused")


def test_layer_rejects_an_unknown_activation_or_last_dimension():
    with pytest.raises(ValueError, match="act must be one of gelu"):
        ttf.BiasAct("tanh")
    with pytest.raises(ValueError, match="last dimension"):
        ttf.BiasAct().build((None, None))


def test_layer_under_mixed_precision_computes_in_bfloat16_with_a_float32_bias():
    layer = ttf.BiasAct(dtype="mixed_bfloat16")
    with tf.GradientTape() as tape:
        y = layer(tf.ones((2, 3)))
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    assert y.dtype == tf.bfloat16 and layer.bias.dtype == "float32"
    (dbias,) = tape.gradient(loss, layer.trainable_variables)
    assert dbias.dtype == tf.float32 and dbias.shape == (3,)


def test_model_fit_lowers_the_loss_and_trains_the_bias():
    model = mlp()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = random(64, 6)
    bias_before = model.layers[1].bias.numpy()
    losses = model.fit(x, np.sin(x[:, :1]), batch_size=16, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    assert not np.allclose(model.layers[1].bias.numpy(), bias_before)


def test_keras_jit_compile_falls_back_instead_of_failing():
    model = mlp()
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert model.jit_compile is False  # and "auto" stays off on a GPU, where Keras would pick XLA


def test_keras_save_and_load_in_process(tmp_path):
    model = mlp("gelu_tanh")
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")  # no custom_objects needed
    assert isinstance(loaded.layers[1], ttf.BiasAct) and loaded.layers[1].act == "gelu_tanh"
    x = random(4, 6)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# SavedModel and .keras, loaded in a fresh process: bias_act's and RMSNorm's

class Net(tf.Module):
    def __init__(self):
        self.bias = tf.Variable(random(8, seed=2))

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32)])
    def __call__(self, x):
        return ttf.bias_act(x, self.bias, "silu")


class RmsNormNet(tf.Module):
    """rms_norm with attrs other than the defaults, and its gradient ops in a saved function."""

    def __init__(self):
        self.weight = tf.Variable(random(8, seed=4))

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32)])
    def __call__(self, x):
        y, s = ttf.add_rms_norm(x, x * 0.5, self.weight, 1e-3, offset=0.5)
        return ttf.rms_norm(y + s, self.weight, 0.25)

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32)])
    def gradient(self, x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(self(x)))
        return tape.gradient(loss, self.weight)


def rms_norm_mlp():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), ttf.RMSNorm(1e-4, offset=0.5),
                              keras.layers.Dense(1)])
    model.layers[1].scale.assign(random(8, seed=5))
    return model


# Tries each load before `import twinop.tf` (recording the error), then after it.
LOADER = textwrap.dedent("""
    import json, os, sys
    import keras, numpy as np, tensorflow as tf
    folder = sys.argv[1]
    x = np.load(os.path.join(folder, "x.npy"))
    def load(op, kind):
        if kind == "keras":
            return keras.models.load_model(os.path.join(folder, op + ".keras"))
        return tf.saved_model.load(os.path.join(folder, op + "_saved_model"))
    errors = {}
    for op in ("bias_act", "rms_norm"):
        for kind in ("saved_model", "keras"):
            try:
                load(op, kind)
            except Exception as e:
                errors[op + " " + kind] = {"type": type(e).__name__, "message": str(e)}
    import twinop.tf
    out = {}
    for op in ("bias_act", "rms_norm"):
        module = load(op, "saved_model")
        out[op + " call"] = module(x)
        out[op + " serving"] = module.signatures["serving_default"](x=x)["output_0"]
        out[op + " keras"] = load(op, "keras").predict(x[:, :6], verbose=0)
    out["rms_norm gradient"] = module.gradient(x)
    np.savez(os.path.join(folder, "out.npz"), **out)
    print(json.dumps(errors))
""")
# Each op's SavedModel names one of its ops (whichever TensorFlow meets first), its model the Keras class.
OPS = {"bias_act": ("Twinop>BiasAct", "twinop>BiasAct"), "rms_norm": ("Twinop>(Add)?RmsNorm(Grad)?", "twinop>RMSNorm")}


@pytest.fixture(scope="module")
def fresh_process(tmp_path_factory):
    """Saves a tf.Module and a Keras model per op, and loads them all in one new Python process."""
    tmp = tmp_path_factory.mktemp("saved")
    nets, models, x = {"bias_act": Net(), "rms_norm": RmsNormNet()}, {"bias_act": mlp(), "rms_norm": rms_norm_mlp()}, \
        random(5, 8, seed=3)
    want = {}
    for op, net in nets.items():
        tf.saved_model.save(net, str(tmp / f"{op}_saved_model"), signatures=net.__call__)
        models[op].save(tmp / f"{op}.keras")
        want[f"{op} call"], want[f"{op} keras"] = net(x).numpy(), models[op].predict(x[:, :6], verbose=0)
    want["rms_norm gradient"] = nets["rms_norm"].gradient(x).numpy()
    np.save(tmp / "x.npy", x)
    run = subprocess.run([sys.executable, "-c", LOADER, str(tmp)], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1]), dict(np.load(tmp / "out.npz")), want


@pytest.mark.parametrize("op", OPS)
def test_saved_model_loads_in_a_fresh_process_after_import(fresh_process, op):
    _, got, want = fresh_process
    np.testing.assert_array_equal(got[f"{op} call"], want[f"{op} call"])
    np.testing.assert_array_equal(got[f"{op} serving"], want[f"{op} call"])


def test_saved_rms_norm_gradient_runs_in_a_fresh_process(fresh_process):
    _, got, want = fresh_process
    np.testing.assert_array_equal(got["rms_norm gradient"], want["rms_norm gradient"])


@pytest.mark.parametrize("op", OPS)
def test_saved_model_without_import_says_the_op_is_not_registered(fresh_process, op):
    errors, _, _ = fresh_process
    assert errors[f"{op} saved_model"]["type"] == "RuntimeError"
    assert re.search(f"Op type not registered '{OPS[op][0]}'", errors[f"{op} saved_model"]["message"])


@pytest.mark.parametrize("op", OPS)
def test_keras_model_loads_in_a_fresh_process_without_custom_objects(fresh_process, op):
    errors, got, want = fresh_process
    np.testing.assert_array_equal(got[f"{op} keras"], want[f"{op} keras"])
    # Before the import, Keras cannot find the class, and names it.
    assert errors[f"{op} keras"]["type"] == "TypeError" and OPS[op][1] in errors[f"{op} keras"]["message"]


# tf.function: shapes and XLA


def test_shapes_inferred_with_unknown_batch_and_known_features():
    shapes = []

    @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32), tf.TensorSpec([16], tf.float32)])
    def f(x, bias):
        with tf.GradientTape() as tape:
            tape.watch([x, bias])
            y = ttf.bias_act(x, bias)
        dx, dbias = tape.gradient(y, [x, bias])
        shapes.extend(t.shape.as_list() for t in (y, dx, dbias))  # static shapes, at trace time
        return y

    for batch in (3, 5):  # one trace serves every batch size
        assert f(tf.ones((batch, 16)), tf.zeros(16)).shape == (batch, 16)
    assert f.experimental_get_tracing_count() == 1
    assert shapes == [[None, 16], [None, 16], [16]]


def test_unknown_rank_traces_and_runs():
    f = tf.function(lambda x, b: ttf.bias_act(x, b),
                    input_signature=[tf.TensorSpec(None, tf.float32), tf.TensorSpec([4], tf.float32)])
    assert f.get_concrete_function().structured_outputs.shape.rank is None
    assert f(tf.ones((2, 3, 4)), tf.zeros(4)).shape == (2, 3, 4)


def test_jit_compile_fails_naming_the_op():
    f = tf.function(lambda x, b: ttf.bias_act(x, b), jit_compile=True)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        f(tf.ones((2, 3)), tf.zeros(3))
    message = str(info.value)
    assert "Detected unsupported operations" in message and "XLA" in message and "Twinop>BiasAct" in message


# device placement


def test_placed_where_tensorflow_places_a_native_op():
    x, bias = tf.ones((2, 3)), tf.zeros(3)
    graph = tf.function(lambda a, b: ttf.bias_act(a, b))
    native = tf.nn.gelu(x + bias).device
    assert ttf.bias_act(x, bias).device == graph(x, bias).device == native


def test_explicit_cpu_placement_of_forward_and_gradient():
    with tf.device("/CPU:0"):
        x, bias = tf.ones((2, 3)), tf.zeros(3)
        with tf.GradientTape() as tape:
            tape.watch(bias)
            y = ttf.bias_act(x, bias)
        dbias = tape.gradient(y, bias)
    assert y.device.endswith("device:CPU:0") and dbias.device.endswith("device:CPU:0")


# the worked example


def test_tf_example_trains():
    run = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "tf_mlp.py")],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    losses = [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", run.stdout, re.M)]
    assert len(losses) >= 2 and losses[-1] < 0.5 * losses[0], run.stdout
