"""The FFI calls partitioned on Auto meshes (jax.experimental.custom_partitioning, with a Shardy
rule), where x's sharding is not in its type at trace time: XLA's partitioner asks these
callbacks how to run each call on its shards, instead of gathering x and running the whole op
on every device. (Explicit meshes and shard_map: _sharding.py.)

The shardings follow from each op's layouts (twinop._layouts): x's rows may be sharded over any
mesh axes, and its features too where the op keeps them apart (bias sharded alike; RMSNorm's
rows stay whole); a result summed over rows (dbias, dweight) is summed over the devices holding
them.
"""
import jax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from .. import _layouts
from . import _bias_act_ffi, _rms_norm_ffi
from ._sharding import mesh_axes

LAYOUTS = {_bias_act_ffi.forward: _layouts.OPS["bias_act"],
           _bias_act_ffi.backward: _layouts.OPS["bias_act_backward"],
           _bias_act_ffi.double_backward: _layouts.OPS["bias_act_double_backward"],
           _rms_norm_ffi.rms_norm: _layouts.OPS["rms_norm"], _rms_norm_ffi.add_rms_norm: _layouts.OPS["add_rms_norm"],
           _rms_norm_ffi.rms_norm_backward: _layouts.OPS["rms_norm_backward"],
           _rms_norm_ffi.add_rms_norm_backward: _layouts.OPS["add_rms_norm_backward"]}
# For the Shardy rule; a per-row statistic has x's dimensions but the features.
FACTORS = {_layouts.ROWS: "... c", _layouts.ROW_STAT: "...", _layouts.PARAM: "c", _layouts.PARAM_GRAD: "c"}


def _on_auto_mesh(x):
    mesh = jax.typeof(x).sharding.mesh
    return not mesh.empty and mesh.size > 1 and all(t == AxisType.Auto for t in mesh.axis_types)


def _x_spec(layout, info):
    """x's PartitionSpec to run the op on, one entry per dimension: x's own, but C whole on every
    device where the op's features mix. GSPMD (Shardy off) may not know x's yet, and an exception
    in these callbacks aborts the process: replicated then."""
    spec = tuple(info.sharding.spec) if info.sharding is not None else ()
    spec += (None,) * (len(info.shape) - len(spec))
    return spec if layout.features_apart else spec[:-1] + (None,)


def _shardings(mesh, layouts, spec):
    per_layout = {_layouts.ROWS: P(*spec), _layouts.ROW_STAT: P(*spec[:-1]), _layouts.PARAM: P(spec[-1]),
                  _layouts.PARAM_GRAD: P(spec[-1])}
    return tuple(NamedSharding(mesh, per_layout[layout]) for layout in layouts)


def _one_or_tuple(results):
    return results if len(results) > 1 else results[0]


def auto_partitioned(op, **attrs):
    """op(*arrays, **attrs), partitioned by XLA where x lies on an Auto mesh of several devices."""
    layout = LAYOUTS[op]
    x_index = layout.arguments.index(_layouts.ROWS)

    def local(*arrays):  # custom_partitioning takes positional arguments only
        return op(*arrays, **attrs)

    def partition(mesh, arg_infos, result_infos):
        spec = _x_spec(layout, arg_infos[x_index])
        row_axes = tuple(a for entry in spec[:-1] for a in mesh_axes(entry))

        def on_shards(*arrays):
            results = local(*arrays)
            results = results if isinstance(results, tuple) else (results,)
            return _one_or_tuple(tuple(jax.lax.psum(r, row_axes) if kind == _layouts.PARAM_GRAD and row_axes else r
                                       for r, kind in zip(results, layout.results)))

        return (mesh, on_shards, _one_or_tuple(_shardings(mesh, layout.results, spec)),
                _shardings(mesh, layout.arguments, spec))

    def infer_sharding_from_operands(mesh, arg_infos, result_infos):  # GSPMD's; Shardy reads the rule
        return _one_or_tuple(_shardings(mesh, layout.results, _x_spec(layout, arg_infos[x_index])))

    partitioned = custom_partitioning(local)
    partitioned.def_partition(partition, infer_sharding_from_operands, sharding_rule=(
        ", ".join(FACTORS[k] for k in layout.arguments) + " -> " + ", ".join(FACTORS[k] for k in layout.results)))

    def call(*arrays):
        return (partitioned if _on_auto_mesh(arrays[x_index]) else local)(*arrays)
    return call
