"""The op under JAX's sharding: the manual axes of shard_map, and Explicit meshes.

Inside shard_map (a user's, or the one below) every array varies over some manual axes. An FFI
call is typed by hand (_bias_act_ffi.py), so what JAX's own ops do implicitly is done here: the
operands are made to vary alike, and the gradient of an input that the op broadcast over
devices (bias, added to every device's rows) is summed over them (summed_like).

On an Explicit mesh (jax.make_mesh's default) x's sharding is in its type at trace time, so the
op runs in a shard_map over it (partitioned), where XLA would otherwise gather x and run the
whole op on every device.
"""
import jax
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from .. import _layouts
from ._primitive import aval_of


def _varying(a):
    return aval_of(a).mat.varying


def vary_alike(*arrays):
    """The arrays cast to vary over the same manual axes (the union of theirs), as JAX's own
    ops cast their operands: an FFI call's result varies over all of them."""
    axes = frozenset().union(*map(_varying, arrays))
    return tuple(jax.lax.pcast(a, tuple(sorted(axes - _varying(a))), to="varying") for a in arrays)


def summed_like(cotangent, primal):
    """An input's cotangent summed over the manual axes it varies over and the input did not (the
    transpose of vary_alike's cast): bias's gradient over the devices holding x's rows. primal: the
    input, or a transpose rule's undefined primal."""
    axes = tuple(sorted(_varying(cotangent) - _varying(primal)))
    return jax.lax.psum(cotangent, axes) if axes else cotangent


def mesh_axes(entry):
    """The mesh axis names one entry of a PartitionSpec shards over (None, a name, or a tuple)."""
    return () if entry is None else entry if isinstance(entry, tuple) else (entry,)


def partitioned(fn, layout, *arrays):
    """fn(*arrays) (the differentiable op, whose arguments and results are laid out as `layout`
    says, twinop._layouts), run on each device's shard of x (its first rows argument) where x is
    sharded over Explicit mesh axes, the parameters resharded as x's last axis is; elsewhere
    fn(*arrays) itself. An op whose features mix (RMSNorm) gets whole rows: x's features are
    gathered first, and its rows results resharded as x was."""
    x = arrays[layout.arguments.index(_layouts.ROWS)]
    sharding = jax.typeof(x).sharding
    given = P(*sharding.spec, *(None,) * (x.ndim - len(sharding.spec)))
    spec = given if layout.features_apart else P(*given[:-1], None)
    mesh = sharding.mesh
    explicit = {name for name, kind in zip(mesh.axis_names, mesh.axis_types) if kind == AxisType.Explicit}
    if not {a for entry in given for a in mesh_axes(entry)} & explicit:
        return fn(*arrays)
    specs = {_layouts.ROWS: spec, _layouts.ROW_STAT: P(*spec[:-1]), _layouts.PARAM: P(spec[-1])}
    arrays = [jax.sharding.reshard(a, NamedSharding(mesh, specs[kind])) for a, kind in zip(arrays, layout.arguments)]
    axes = {a for entry in spec for a in mesh_axes(entry)} & explicit
    out = fn(*arrays) if not axes else jax.shard_map(
        fn, mesh=mesh, in_specs=tuple(specs[k] for k in layout.arguments),
        out_specs=tuple(specs[k] for k in layout.results), axis_names=axes)(*arrays)
    return tuple(jax.sharding.reshard(r, NamedSharding(mesh, given)) if kind == _layouts.ROWS and spec != given else r
                 for r, kind in zip(out, layout.results))
