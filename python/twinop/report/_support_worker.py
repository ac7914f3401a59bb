"""Axis 2's worker, one framework per process, printing one JSON object:

    python -m twinop.report._support_worker numpy|torch|tensorflow|jax
        calls each API of that binding on each dtype and device, and on a device or backend the
        op has no kernel for;
    python -m twinop.report._support_worker --registry torch|tensorflow|jax
        reads what the framework's own registry says of the op: the dtypes its signature
        declares, and the (device, dtype) kernels registered (run where the twinop package on
        PYTHONPATH was built with CUDA, so that its CUDA kernels register without a GPU).

Every op (support.OP_NAMES) gets its own cells, rms_norm's with the mixed dtypes too (MIXED: half
x, float32 weight). A cell is "supported" when forward and backward run and match the float64 reference within
a loose per-dtype tolerance, "wrong result" when they run but differ, "unsupported" with the
error a user gets, or "not available here" when the device is absent."""
import json
import os
import sys

import numpy as np

from twinop import ACTIVATIONS, reference
from twinop.report.support import DTYPES, EPS, MIXED, OP_NAMES, PROBES, SHAPE, TOLERANCE

DEVICES = ("cpu", "cuda")


def first_line(error):
    """What a user reads first; TF's graph errors open with "in user code:", so their last line too."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [""]
    tail = f" ... {lines[-1]}" if len(lines) > 1 and lines[0].endswith(":") else ""
    return f"{type(error).__name__}: {lines[0]}{tail}"


def numpy_dtype(dtype):
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def inputs(dtype):
    """(x, b, dy) as numpy arrays of dtype (bfloat16 from ml_dtypes): b is bias_act's bias, rms_norm's
    weight; a MIXED dtype gives x and dy the first, the weight the second."""
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(SHAPE) * 2, rng.standard_normal(SHAPE[-1]), rng.standard_normal(SHAPE)]
    x_dtype, b_dtype = MIXED.get(dtype, (dtype, dtype))
    return [v.astype(numpy_dtype(d)) for v, d in zip(values, (x_dtype, b_dtype, x_dtype))]


def expected(op, x, b, dy, act):
    """(y, dx, db) of op in float64."""
    if op == "rms_norm":
        return (reference.rms_norm(x, b, EPS)[0], *reference.rms_norm_backward(dy, x, b, EPS))
    return (reference.bias_act(x, b, act), *reference.bias_act_backward(dy, x, b, act))


def forwards(module):
    """Each op's forward through one of twinop's binding modules, as f(x, b, act) (act: bias_act's)."""
    return {"bias_act": lambda x, b, act: module.bias_act(x, b, act),
            "rms_norm": lambda x, w, act: module.rms_norm(x, w, EPS)}


def as_float64(a):
    """The exact values of a (real-valued by construction), as float64."""
    return np.real(a).astype(np.float64)


def mismatch(op, got, x, bias, dy, act, dtype):
    """Largest error of (y, dx, dbias) beyond the tolerance, 0.0 when all are within it."""
    tol = TOLERANCE.get(MIXED.get(dtype, (dtype,))[0], 1e-4)
    want = expected(op, *(as_float64(a) for a in (x, bias, dy)), act)
    worst = 0.0
    for g, w in zip(got, want):
        g = np.asarray(g, np.float64)
        if g.shape != w.shape or not np.allclose(g, w, rtol=tol, atol=tol):
            worst = max(worst, float(np.max(np.abs(g - w))) if g.shape == w.shape else float("inf"))
    return worst


def numpy_apis():
    import twinop.numpy as tn

    def run(op, x, b, dy, act, device):
        if op == "rms_norm":
            return (tn.rms_norm(x, b, EPS), *tn.rms_norm_backward(dy, x, b, EPS))
        return (tn.bias_act(x, b, act), *tn.bias_act_backward(dy, x, b, act))

    return {"numpy": run}, {"cpu": True}, {"numpy": np.__version__}


def torch_apis():
    import torch

    import twinop.torch as tt

    def run(op, x, bias, dy, act, device):
        forward = forwards(tt)[op]
        as_tensor = lambda a: torch.from_numpy(as_float64(a)).to(device, getattr(torch, str(a.dtype)))
        xt, bt, dyt = (as_tensor(a) for a in (x, bias, dy))
        y = forward(xt, bt, act)  # forward first: a dtype it rejects fails here, not in requires_grad_
        xt.requires_grad_(), bt.requires_grad_()
        forward(xt, bt, act).backward(dyt)
        return [t.detach().cpu().to(torch.float64).numpy() for t in (y, xt.grad, bt.grad)]

    devices = {"cpu": True, "cuda": torch.cuda.is_available()}
    return {"torch eager": run}, devices, {"torch": torch.__version__}


def torch_backends(op):
    """{backend: call} of op's twinop.torch forward on tensors of a backend besides the devices: a
    sparse one has no kernel; on meta the fake kernel answers with shapes alone."""
    import torch

    import twinop.torch as tt

    x, bias, forward = torch.ones(3, 5), torch.ones(5), forwards(tt)[op]
    return {"SparseCPU": lambda: forward(x.to_sparse(), bias, "gelu"),
            "Meta": lambda: forward(x.to("meta"), bias.to("meta"), "gelu")}


def tensorflow_apis():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    import twinop.tf as ttf
    from twinop.tf._library import ops

    def with_gradient(forwards_by_op):
        def run(op, x, bias, dy, act, device):
            with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
                xt, bt, dyt = (tf.cast(as_float64(a), getattr(tf, str(a.dtype))) for a in (x, bias, dy))
                with tf.GradientTape() as tape:
                    tape.watch([xt, bt])
                    y = forwards_by_op[op](xt, bt, act)
                dx, dbias = tape.gradient(y, [xt, bt], output_gradients=dyt)
            return [tf.cast(t, tf.float64).numpy() for t in (y, dx, dbias)]
        return run

    eager = forwards(ttf)
    apis = {
        "tf eager": with_gradient(eager),
        "tf.function": with_gradient({op: tf.function(f) for op, f in eager.items()}),
        # The generated op wrappers alone: what TensorFlow itself says, without twinop's Python checks.
        "tf op, no Python wrapper": with_gradient({
            "bias_act": lambda x, bias, act: ops.twinop_bias_act(x, bias, act=act),
            "rms_norm": lambda x, w, act: ops.twinop_rms_norm(x, w, U=tf.float64 if x.dtype == tf.float64
                                                              else tf.float32, eps=EPS)[0]}),
    }
    devices = {"cpu": True, "cuda": bool(tf.config.list_physical_devices("GPU"))}
    return apis, devices, {"tensorflow": tf.__version__}


def tensorflow_backends(op):
    """{backend: call} of op's twinop.tf forward where a user asks for a device without falling back:
    the GPU with soft placement off (a CPU-only machine has none), and XLA (jit_compile=True)."""
    import tensorflow as tf

    import twinop.tf as ttf

    x, bias, forward = tf.ones((3, 5)), tf.ones(5), forwards(ttf)[op]

    def on_gpu_without_soft_placement():
        tf.config.set_soft_device_placement(False)
        try:
            with tf.device("/GPU:0"):
                return forward(x, bias, "gelu").numpy()
        finally:
            tf.config.set_soft_device_placement(True)

    xla = tf.function(lambda x, bias: forward(x, bias, "gelu"), jit_compile=True)
    return {"GPU (soft placement off)": on_gpu_without_soft_placement, "XLA_CPU_JIT": lambda: xla(x, bias)}


def jax_apis():
    import jax

    import twinop.jax as tj

    jax.config.update("jax_enable_x64", True)  # JAX's float64 needs it; this process is JAX's alone

    def traced(forwards_by_op):
        def run(op, x, bias, dy, act, device):
            place = jax.devices("gpu" if device == "cuda" else "cpu")[0]
            xj, bj, dyj = (jax.device_put(jax.numpy.asarray(as_float64(a)).astype(a.dtype.name), place)
                           for a in (x, bias, dy))
            y, vjp = jax.vjp(lambda a, b: forwards_by_op[op](a, b, act), xj, bj)
            return [np.asarray(t, np.float64) for t in (y, *vjp(dyj))]
        return run

    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:  # no GPU backend in this jax install
        has_gpu = False
    eager = forwards(tj)
    apis = {"jax eager": traced(eager),
            "jax.jit": traced({op: jax.jit(f, static_argnums=2) for op, f in eager.items()})}
    return apis, {"cpu": True, "cuda": has_gpu}, {"jax": jax.__version__}


def probe(framework):
    try:
        apis, devices, versions = {"numpy": numpy_apis, "torch": torch_apis, "tensorflow": tensorflow_apis,
                                   "jax": jax_apis}[framework]()
        backends = {"torch": torch_backends, "tensorflow": tensorflow_backends}.get(framework)
    except ImportError as error:
        return {"framework": framework, "import_error": first_line(error), "cells": []}
    cells = []
    for op in OP_NAMES:
        for api, run in apis.items():
            for device in DEVICES:
                if framework == "numpy" and device != "cpu":
                    continue  # numpy has no device to ask for
                for dtype in DTYPES[op] + PROBES:
                    cell = {"op": op, "api": api, "device": device, "dtype": dtype}
                    if not devices[device]:
                        cell["status"] = "not available here"
                    else:
                        cell.update(call(op, run, device, dtype))
                    cells.append(cell)
    return {"framework": framework, "versions": versions, "devices": devices, "cells": cells,
            "backends": [{"op": op, "backend": name, **run_once(call)}
                         for op in (OP_NAMES if backends else ()) for name, call in backends(op).items()]}


def run_once(call):
    """{"status": "runs"} or {"status": "error", "error": what the user reads}."""
    try:
        call()
    except Exception as error:  # the point is to record what a user would see
        return {"status": "error", "error": first_line(error)}
    return {"status": "runs"}


def framework_names(framework):
    """The names every op's forward, backward and double backward have in the framework's registry."""
    return [name for names in OP_NAMES.values() for name in names[framework]]


# The registry of each framework: what the op's signature declares, and its kernels per device.
# A device's dtypes are None where the registry has no dtypes (the kernel decides at run time).
def torch_registry():
    import torch

    import twinop.torch  # noqa: F401  (registers the ops)

    keys = ("CPU", "CUDA", "Meta", "SparseCPU", "SparseCUDA", "MPS", "XPU", "HIP")
    ops = {}
    for name in framework_names("torch"):
        schema = str(getattr(torch.ops.twinop, name.split("::")[1]).default._schema)
        kernels = {key: None for key in keys if torch._C._dispatch_has_kernel_for_dispatch_key(name, key)}
        ops[name] = {"signature": schema, "declared_dtypes": None, "kernels": kernels}
    return ops, {"torch": torch.__version__}


def tensorflow_registry():
    import tensorflow as tf
    from tensorflow.python.framework import kernels, op_def_registry

    import twinop.tf  # noqa: F401  (loads the op library)

    ops = {}
    for name in framework_names("tensorflow"):
        type_attr = next(a for a in op_def_registry.get(name).attr if a.type == "type")
        declared = [tf.dtypes.as_dtype(t).name for t in type_attr.allowed_values.list.type]
        registered = {}
        for kernel in kernels.get_registered_kernels_for_op(name).kernel:
            constrained = [c.allowed_values.list.type for c in kernel.constraint if c.name == type_attr.name]
            registered[kernel.device_type] = ([tf.dtypes.as_dtype(t).name for t in constrained[0]] if constrained
                                              else declared)
        ops[name] = {"signature": f"{type_attr.name}: {{{', '.join(declared)}}}", "declared_dtypes": declared,
                     "kernels": dict(sorted(registered.items()))}
    return ops, {"tensorflow": tf.__version__}


def jax_registry():
    """The FFI targets per XLA platform: registered with a platform's client, or queued until that
    platform's backend loads (CUDA on a machine without one); XLA's registry has no dtypes."""
    import jax
    from jax._src.lib import xla_client

    import twinop.jax  # noqa: F401  (registers the targets)

    jax.devices()  # the CPU client takes the targets queued for it
    queued = {platform: {entry[0] for entry in entries} for platform, entries in xla_client._custom_callback.items()}
    ops = {}
    for name in framework_names("jax"):
        platforms = {p: None for p in ("Host", "CUDA", "ROCM")
                     if name in xla_client.custom_call_targets(p) or name in queued.get(p, ())}
        ops[name] = {"signature": f"jax.ffi.ffi_call({name!r}, ...): ffi::AnyBuffer arguments",
                     "declared_dtypes": None, "kernels": platforms}
    return ops, {"jax": jax.__version__}


def registry(framework):
    from twinop import _build_info

    try:
        ops, versions = {"torch": torch_registry, "tensorflow": tensorflow_registry, "jax": jax_registry}[framework]()
    except ImportError as error:
        return {"framework": framework, "import_error": first_line(error), "ops": {}}
    return {"framework": framework, "versions": versions, "built_with_cuda": _build_info.WITH_CUDA, "ops": ops}


def call(op, run, device, dtype):
    """One cell: op's forward and backward (bias_act's for every activation) on one dtype and device."""
    try:
        x, bias, dy = inputs(dtype)
        worst = 0.0
        for act in ACTIVATIONS if op == "bias_act" else (None,):
            worst = max(worst, mismatch(op, run(op, x, bias, dy, act, device), x, bias, dy, act, dtype))
    except Exception as error:  # the point is to record what a user would see
        return {"status": "unsupported", "error": first_line(error)}
    return {"status": "wrong result", "max_error": worst} if worst else {"status": "supported"}


if __name__ == "__main__":
    print(json.dumps(registry(sys.argv[2]) if sys.argv[1] == "--registry" else probe(sys.argv[1])))
