"""The Distributed section's JAX worker (python -m twinop.report._distributed_jax): twinop's op
under jax.jit on 4 virtual CPU devices with sharded inputs, on Auto and Explicit meshes and in
shard_map, in float64. Prints one JSON object.

For each layout and pass (forward, jax.grad, a second-order penalty, vmap(grad), forward mode's
jax.jvp, and a Hessian-vector product by jax.jvp of jax.grad): the largest
error against jax.nn.gelu(x + b) under the same transforms, relative to its largest value; the
collectives in the compiled HLO with the bytes of their results (XLA may merge collectives, so
bytes tell more than counts), the same for jax.nn.gelu(x + b), the result shapes of twinop's
custom calls (one device's rows, or the whole array where XLA replicated the op) and the
results' shardings. A bare FFI call (no sharding rule) shows what XLA does to an opaque op. The
same for RMSNorm (rms_norm, add_rms_norm) against its composition, in the variants it serves.
"""
import os

DEVICES = 4
# Set before jax is imported: its CPU client reads the flag once.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={DEVICES}").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P  # noqa: E402

jax.config.update("jax_enable_x64", True)

import twinop.jax as tj  # noqa: E402
from twinop.jax import _bias_act_ffi  # noqa: E402

SHAPE, BATCH = (64, 128), 2  # x's rows and features; vmap(grad) runs over BATCH such x
COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
# One HLO instruction: "%name = <result type> <opcode>(<operands>), <attributes>"; async pairs are
# counted at their -done, whose result is the collective's.
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?\S+ = (.+?) ([a-z-]+?)(?:-done)?\((.*)$", re.M)
ARRAY = re.compile(r"\b([a-z]+)(\d+)\[([\d,]*)\]")


def nbytes(hlo_type):
    """Bytes of an HLO result type: an array (f64[16,128]{1,0}) or a tuple of them."""
    return sum(int(bits) // 8 * int(np.prod([int(n) for n in dims.split(",") if n]))
               for _, bits, dims in ARRAY.findall(hlo_type))


def hlo_facts(compiled):
    """(collectives as [opcode, bytes], twinop custom calls' result types) of a compiled program."""
    collectives, custom_calls = [], []
    for result, opcode, rest in INSTRUCTION.findall(compiled.as_text()):
        if opcode in COLLECTIVES:
            collectives.append([opcode, nbytes(result)])
        elif opcode == "custom-call" and "twinop_" in rest:
            custom_calls.append(re.sub(r"\{[\d,]*\}", "", result))  # without the layout
    return collectives, custom_calls


def native(x, bias):
    return jax.nn.gelu(x + bias, approximate=False)


def ours(x, bias):
    return tj.bias_act(x, bias, "gelu")


def _rms_norm_composition(x, weight):
    return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + 1e-5) * (weight + 0.5)


# RMSNorm (its rows stay whole: features sharded are gathered first), each as a function of
# (x, weight); add_rms_norm's residual cos(x), its y + s the result.
RMS_NORM_OPS = {
    "rms_norm": (lambda x, w: tj.rms_norm(x, w, 1e-5, offset=0.5), _rms_norm_composition),
    "add_rms_norm": (lambda x, w: sum(tj.add_rms_norm(x, jnp.cos(x), w, 1e-5, offset=0.5)),
                     lambda x, w: _rms_norm_composition(x + jnp.cos(x), w) + x + jnp.cos(x)),
}
RMS_NORM_VARIANTS = ("Explicit mesh, rows sharded", "Explicit mesh, features sharded", "Auto mesh, rows sharded",
                     "shard_map, rows")
RMS_NORM_PASSES = {"rms_norm": ("forward", "grad", "jvp", "jvp of grad"), "add_rms_norm": ("forward", "grad")}


def bare_ffi(x, bias):  # the FFI call alone: no shard_map, no custom_partitioning
    return _bias_act_ffi.forward(x, bias, act="gelu")


def _loss(f):
    return lambda x, bias: jnp.sum(f(x, bias) ** 2)


def _penalty(f):
    """A second-order loss: y's sum plus the squares of both gradients."""
    def loss(x, bias):
        dx, dbias = jax.grad(_loss(f), argnums=(0, 1))(x, bias)
        return jnp.sum(f(x, bias)) + jnp.sum(dx ** 2) + jnp.sum(dbias ** 2)
    return loss


PASSES = {
    "forward": lambda f: f,
    "grad": lambda f: jax.grad(_loss(f), argnums=(0, 1)),
    "second order": lambda f: jax.grad(_penalty(f), argnums=(0, 1)),
    "vmap(grad)": lambda f: jax.vmap(jax.grad(_loss(f), argnums=(0, 1)), in_axes=(0, None)),
    "jvp": lambda f: lambda x, bias: jax.jvp(f, (x, bias), (jnp.cos(x), jnp.sin(bias))),
    "jvp of grad": lambda f: lambda x, bias: jax.jvp(jax.grad(_loss(f), argnums=(0, 1)), (x, bias),
                                                     (jnp.cos(x), jnp.sin(bias))),
}


def _mesh(axis_type):
    return jax.make_mesh((DEVICES,), ("x",), axis_types=(axis_type,), devices=jax.devices("cpu")[:DEVICES])


def variants():
    """name -> (mesh, x's spec, bias's spec, the function around the op)."""
    auto, explicit = _mesh(AxisType.Auto), _mesh(AxisType.Explicit)

    def in_shard_map(check_vma):
        return lambda f: jax.shard_map(f, mesh=auto, in_specs=(P("x", None), P()), out_specs=P("x", None),
                                       check_vma=check_vma)

    same = lambda f: f  # noqa: E731
    return {
        "Explicit mesh, rows sharded": (explicit, P("x", None), P(), same),
        "Explicit mesh, features sharded": (explicit, P(None, "x"), P("x"), same),
        "Auto mesh, rows sharded": (auto, P("x", None), P(), same),
        "Auto mesh, features sharded": (auto, P(None, "x"), P("x"), same),
        "shard_map, rows": (auto, P("x", None), P(), in_shard_map(True)),
        "shard_map, rows, check_vma=False": (auto, P("x", None), P(), in_shard_map(False)),
    }


def _relative_error(got, want):
    return max(float(jnp.max(jnp.abs(g - w)) / jnp.max(jnp.abs(w))) for g, w in zip(jax.tree.leaves(got),
                                                                                     jax.tree.leaves(want)))


def measure(mesh, x_spec, bias_spec, around, pass_, ours=ours, native=native):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(((BATCH,) if pass_ == "vmap(grad)" else ()) + SHAPE)
    x = jax.device_put(x, NamedSharding(mesh, P(*((None,) if pass_ == "vmap(grad)" else ()), *x_spec)))
    bias = jax.device_put(rng.standard_normal(SHAPE[-1]), NamedSharding(mesh, bias_spec))
    ours_fn, native_fn = (jax.jit(PASSES[pass_](around(f))) for f in (ours, native))
    start = time.perf_counter()
    collectives, custom_calls = hlo_facts(ours_fn.lower(x, bias).compile())
    compile_s = time.perf_counter() - start
    got = ours_fn(x, bias)
    return {"error": _relative_error(got, native_fn(x, bias)), "collectives": collectives,
            "native_collectives": hlo_facts(native_fn.lower(x, bias).compile())[0], "custom_calls": custom_calls,
            "shardings": [str(a.sharding.spec) for a in jax.tree.leaves(got)], "compile_s": compile_s}


def main():
    results = {"jax": jax.__version__, "devices": DEVICES, "x": f"float64{list(SHAPE)}",
               "x_bytes": int(np.prod(SHAPE)) * 8, "bias_bytes": SHAPE[-1] * 8, "variants": {}}
    for name, (mesh, x_spec, bias_spec, around) in variants().items():
        results["variants"][name] = {"x": str(x_spec), "bias": str(bias_spec), "mesh": mesh.axis_types[0].name,
                                     "passes": {p: measure(mesh, x_spec, bias_spec, around, p) for p in PASSES}}
    mesh = _mesh(AxisType.Auto)
    x = jax.device_put(np.ones(SHAPE), NamedSharding(mesh, P("x", None)))
    bias = jax.device_put(np.ones(SHAPE[-1]), NamedSharding(mesh, P()))
    collectives, custom_calls = hlo_facts(jax.jit(bare_ffi).lower(x, bias).compile())
    results["bare_ffi_call"] = {"mesh": "Auto", "x": "P('x', None)", "collectives": collectives,
                                "custom_calls": custom_calls}
    every = variants()
    results["rms_norm"] = {f"{op} / {name}": {p: measure(*every[name], p, *RMS_NORM_OPS[op]) for p in passes}
                           for op, passes in RMS_NORM_PASSES.items() for name in RMS_NORM_VARIANTS}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
