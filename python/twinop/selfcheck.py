"""Runs each built binding on a small input and compares it with the float64 reference."""
import importlib

import numpy as np

from . import ACTIVATIONS, reference

BINDINGS = ("numpy", "torch", "tf", "jax")


def _run(binding, x, bias, dy, act):
    """(y, dx, dbias) from one binding, as float64 numpy arrays."""
    if binding == "numpy":
        module = importlib.import_module("twinop.numpy")
        return (module.bias_act(x, bias, act), *module.bias_act_backward(dy, x, bias, act))
    if binding == "torch":
        import torch

        module = importlib.import_module("twinop.torch")
        xt, bt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(bias).requires_grad_()
        y = module.bias_act(xt, bt, act)
        y.backward(torch.from_numpy(dy))
        return y.detach().numpy(), xt.grad.numpy(), bt.grad.numpy()
    if binding == "jax":
        import jax

        module = importlib.import_module("twinop.jax")
        with jax.enable_x64(True):  # the float64 inputs stay float64
            y, vjp = jax.vjp(lambda a, b: module.bias_act(a, b, act), x, bias)
            return tuple(np.asarray(a) for a in (y, *vjp(dy)))
    import tensorflow as tf

    module = importlib.import_module("twinop.tf")
    xt, bt = tf.constant(x), tf.constant(bias)
    with tf.GradientTape() as tape:
        tape.watch([xt, bt])
        y = module.bias_act(xt, bt, act)
    dx, dbias = tape.gradient(y, [xt, bt], output_gradients=tf.constant(dy))
    return y.numpy(), dx.numpy(), dbias.numpy()


def check(binding):
    """'ok', or the reason this binding is unavailable or wrong."""
    rng = np.random.default_rng(0)
    x, bias, dy = rng.standard_normal((5, 7)), rng.standard_normal(7), rng.standard_normal((5, 7))
    try:
        for act in ACTIVATIONS:
            got = _run(binding, x, bias, dy, act)
            want = (reference.bias_act(x, bias, act), *reference.bias_act_backward(dy, x, bias, act))
            for name, g, w in zip(("y", "dx", "dbias"), got, want):
                if not np.allclose(g, w, rtol=1e-10, atol=1e-12):
                    return f"WRONG: {act} {name} differs from the float64 reference by {np.max(np.abs(g - w)):.3g}"
    except ImportError as error:
        return f"not available: {error}"
    return "ok"
