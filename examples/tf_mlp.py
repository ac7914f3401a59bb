"""A two-layer MLP with twinop's fused bias + GELU in place of Dense(activation="gelu"), trained
for a few steps on synthetic data with Keras. Prints one `step N loss X` line per step.

    python examples/tf_mlp.py
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up noise

import keras  # noqa: E402
import numpy as np  # noqa: E402

import twinop.tf  # noqa: E402

keras.utils.set_random_seed(0)
features, hidden, steps, samples = 16, 64, 30, 256

# Dense(use_bias=False) + BiasAct is Dense(activation=act) with the bias add fused into the activation.
model = keras.Sequential([
    keras.Input((features,)),
    keras.layers.Dense(hidden, use_bias=False),
    twinop.tf.BiasAct(act="gelu"),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
model.summary()

# Synthetic regression target: a smooth function of the inputs.
x = np.random.default_rng(0).normal(size=(samples, features)).astype("float32")
y = np.sin(x[:, :1]) + 0.5 * x[:, 1:2] * x[:, 2:3]

# One full batch per epoch: each epoch is one optimizer step.
history = model.fit(x, y, batch_size=samples, epochs=steps, verbose=0)
for step, loss in enumerate(history.history["loss"]):
    print(f"step {step} loss {loss:.6f}")
