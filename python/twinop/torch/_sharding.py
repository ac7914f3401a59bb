"""DTensor sharding rules for the ops' functional forms (torch.distributed.tensor.experimental.
register_sharding; the out= overloads it cannot take), so the ops run on DTensors, tensor
parallel included, on each rank's local shards with no collective of their own. Without a rule
DTensor raises NotImplementedError ("does not have a sharding strategy registered").

Registered at `import twinop.torch` when torch.distributed.tensor is already imported, else by
register_dtensor_sharding(): importing torch.distributed.tensor costs ~0.6 s, which a process
that never shards should not pay.

The rules follow from each op's layouts (twinop._layouts); DTensor picks the listed placements
that need the least redistribution of the actual inputs.
"""
import torch

from .._layouts import OPS, PARAM, PARAM_GRAD, ROW_STAT, ROWS

_registered = False


def _placements(layouts, count, rows, param, param_grad):
    """One placement per layout, then None for each non-tensor argument up to count. A per-row
    statistic (x.shape[:-1]) is placed as x's rows are: the strategies below never shard x's last
    dimension for an op that needs it."""
    placed = [{ROWS: rows, ROW_STAT: rows, PARAM: param, PARAM_GRAD: param_grad}[layout] for layout in layouts]
    return placed + [None] * (count - len(placed))


def _strategies(layout, ndim, argument_count):
    """(result placements, argument placements) pairs for one mesh dimension."""
    from torch.distributed.tensor import Partial, Replicate, Shard

    def pair(rows, param, param_grad):
        return (_placements(layout.results, len(layout.results), rows, param, param_grad),
                _placements(layout.arguments, argument_count, rows, param, None))

    strategies = [pair(Replicate(), Replicate(), Replicate())]
    # x sharded along a dimension but the last: each rank holds whole rows, so a parameter is
    # replicated and its gradient a Partial sum, reduced by whoever needs it whole.
    strategies += [pair(Shard(d), Replicate(), Partial()) for d in range(ndim - 1)]
    if layout.features_apart:  # x sharded along C, the parameters and their gradients alike
        strategies.append(pair(Shard(ndim - 1), Shard(0), Shard(0)))
    return strategies


def _rule(layout, argument_count):
    def rule(*args):  # DTensor passes each DTensor argument as its spec, which has .ndim
        return _strategies(layout, args[layout.arguments.index(ROWS)].ndim, argument_count)
    return rule


def register_dtensor_sharding():
    """Registers the ops' DTensor sharding rules (imports torch.distributed.tensor); a second
    call does nothing. twinop.torch calls it on import when torch.distributed.tensor is already
    imported: call it before running the ops on DTensors otherwise."""
    global _registered
    if _registered:
        return
    if not torch.distributed.is_available():
        raise RuntimeError("twinop.torch.register_dtensor_sharding: this torch was built without torch.distributed")
    from torch.distributed.tensor.experimental import register_sharding

    for name, layout in OPS.items():
        op = getattr(torch.ops.twinop, name).default
        register_sharding(op)(_rule(layout, len(op._schema.arguments)))
    _registered = True
