"""The Distributed section's TensorFlow worker (python -m twinop.report._distributed_tf): twinop's
op under tf.distribute.MirroredStrategy on 2 logical CPUs, and under TF DTensor. Prints one JSON
object.

MirroredStrategy: Dense -> twinop.tf.BiasAct -> Dense trained by a custom loop (strategy.run in a
tf.function) and by Keras fit, losses and weights against the same training on one device; the
devices the traced step places twinop's ops on; the bias's copies on the replicas. DTensor: the
error a user gets, eager and in a tf.function, next to tf.nn.gelu(x + b) with the same layout.
"""
import os

REPLICAS = 2
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import re  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# Before the runtime starts: the CPU split into logical devices, one per replica.
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * REPLICAS)

keras.config.set_floatx("float64")  # the comparisons with one device to float64's precision

import twinop.tf as ttf  # noqa: E402

BATCH, STEPS, EPOCHS, LR = 16, 4, 2, 0.1
DEVICES = [f"/cpu:{i}" for i in range(REPLICAS)]


def first_sentence(error):
    """The error's class and its message's first sentence, without MLIR's source location."""
    text = re.sub(r"^[^\n]*?:\d+:\d+: error: ", "", str(error).strip())
    return f"{type(error).__name__}: {text.split('. ')[0].splitlines()[0]}"


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((BATCH * STEPS, 16)), rng.standard_normal((BATCH * STEPS, 4))


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, use_bias=False), ttf.BiasAct(),
                              keras.layers.Dense(4, use_bias=False)])
    model.layers[1].bias.assign(np.linspace(-0.5, 0.5, 32))
    return model


def _weights_difference(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in zip(a.get_weights(), b.get_weights()))


def _custom_loop(strategy):
    """Losses, the model after STEPS steps of SGD and the traced step; strategy None: one device."""
    x, y = _data()
    with strategy.scope() if strategy else _no_scope():
        model, optimizer = _model(), keras.optimizers.SGD(LR)

    def replica_step(xb, yb):
        with tf.GradientTape() as tape:
            per_example = tf.reduce_mean((model(xb) - yb) ** 2, axis=-1)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=BATCH)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    @tf.function
    def step(xb, yb):
        if strategy is None:
            return replica_step(xb, yb)
        return strategy.reduce("SUM", strategy.run(replica_step, (xb, yb)), axis=None)

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    batches = list(strategy.experimental_distribute_dataset(dataset) if strategy else dataset)
    losses = [float(step(xb, yb)) for xb, yb in batches]
    return losses, model, step.get_concrete_function(*batches[0]).graph


class _no_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _twinop_ops(graph):
    """'op on device' for each twinop op in a traced graph."""
    return sorted(f"{op.type} on {op.device}" for op in graph.get_operations() if op.type.startswith("Twinop>"))


def mirrored():
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    one_losses, one_model, _ = _custom_loop(None)
    losses, model, graph = _custom_loop(strategy)
    bias = model.layers[1].bias.value  # Keras's variable holds TF's: a MirroredVariable here
    out = {"replicas": strategy.num_replicas_in_sync,
           "custom_loop": {"losses": losses, "one_device_losses": one_losses,
                           "weights_difference": _weights_difference(model, one_model),
                           "twinop_ops": _twinop_ops(graph),
                           "bias_variable": type(bias).__name__,
                           "bias_copies_difference": float(max(np.max(np.abs(v.numpy() - bias.values[0].numpy()))
                                                               for v in bias.values))}}
    x, y = _data()
    fits = {}
    for name, scope in (("one device", _no_scope()), ("mirrored", strategy.scope())):
        with scope:
            model = _model()
            model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
        history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0).history
        fits[name] = (history["loss"], model)
    out["keras_fit"] = {"losses": fits["mirrored"][0], "one_device_losses": fits["one device"][0],
                        "weights_difference": _weights_difference(fits["mirrored"][1], fits["one device"][1])}
    return out


def dtensor():
    """The op on a batch-sharded DTensor, eager and in a tf.function, and TF's own ops alike."""
    from tensorflow.experimental import dtensor as dt

    mesh = dt.create_mesh([("batch", REPLICAS)], devices=[f"CPU:{i}" for i in range(REPLICAS)])
    x = dt.call_with_layout(tf.ones, dt.Layout(["batch", dt.UNSHARDED], mesh), shape=(BATCH, 8), dtype=tf.float64)
    bias = dt.call_with_layout(tf.zeros, dt.Layout([dt.UNSHARDED], mesh), shape=(8,), dtype=tf.float64)
    out = {}
    for name, fn in (("twinop eager", ttf.bias_act), ("twinop tf.function", tf.function(ttf.bias_act)),
                     ("tf.nn.gelu(x + b) tf.function", tf.function(lambda x, b: tf.nn.gelu(x + b)))):
        try:
            out[name] = {"layout": str(dt.fetch_layout(fn(x, bias)).sharding_specs)}
        except Exception as error:  # DTensor's refusal of an op it has no rule for
            out[name] = {"error": first_sentence(error)}
    return out


def main():
    print(json.dumps({"tensorflow": tf.__version__, "keras": keras.__version__, "mirrored": mirrored(),
                      "dtensor": dtensor()}))


if __name__ == "__main__":
    main()
