"""What every op's JAX primitives share: how one is defined, the types of its results, and the
helpers of their derivative rules.

The ops are primitives (jax.extend.core.Primitive) rather than custom_vjp functions: a primitive
may have a JVP rule and a transpose rule, so one linear primitive serves forward mode and, by
transposition, reverse mode through the fused backward kernel. Each primitive runs, eagerly and
compiled, as a function of FFI calls (`impl`), which XLA keeps as one custom call each.
"""
import jax
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import ad, mlir
from jax.sharding import PartitionSpec as P

Zero = ad.Zero


def define(name, impl, abstract_eval, *, multiple_results):
    """A primitive run by impl(*arrays, **params) (FFI calls and jax.numpy), typed by
    abstract_eval(*avals, **params)."""
    primitive = Primitive(name)
    primitive.multiple_results = multiple_results
    primitive.def_impl(impl)
    primitive.def_abstract_eval(abstract_eval)
    mlir.register_lowering(primitive, mlir.lower_fun(impl, multiple_results=multiple_results))
    # On an Auto mesh impl's FFI calls lower under custom_partitioning, which needs the devices:
    # JAX lowers without them unless the program holds a primitive of this set (as
    # TransformerEngine's primitives do; there is no public way).
    dispatch.prim_requires_devices_during_lowering.add(primitive)
    return primitive


def like(aval):
    """A result typed as the input of type aval (its sharding and the manual axes it varies over,
    which jax.grad checks inside shard_map), but never weak (a Python scalar's type)."""
    return aval.update(weak_type=False)


def param_grad_like(param, x):
    """The type of a parameter's gradient summed over x's rows (dbias, dweight): the parameter's
    shape, dtype and sharding, varying like x (each device sums its own rows: the transpose rules
    sum over the devices, _sharding.summed_like)."""
    return like(x).update(shape=param.shape, dtype=param.dtype, sharding=param.sharding)


def row_stat_like(x, dtype):
    """The type of a per-row statistic of x (RMSNorm's rstd): x.shape[:-1], sharded as x's rows."""
    spec = tuple(x.sharding.spec) + (None,) * (x.ndim - len(x.sharding.spec))
    return like(x).update(shape=x.shape[:-1], dtype=dtype, sharding=x.sharding.update(spec=P(*spec[:-1])))


def is_zero(tangent):
    return type(tangent) is Zero


def instantiate(tangents):
    """Symbolic zeros (JAX's Zero, for an input without a tangent or cotangent) as arrays."""
    return [ad.instantiate_zeros(t) for t in tangents]


def zero_like(primal):
    return Zero(jax.typeof(primal).to_tangent_aval())


def aval_of(a):
    """The type of an array, a tracer, or a transpose rule's undefined primal."""
    return a.aval if ad.is_undefined_primal(a) else jax.typeof(a)
