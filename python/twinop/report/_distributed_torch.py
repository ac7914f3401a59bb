"""The Distributed section's PyTorch worker (python -m twinop.report._distributed_torch [--compile]):
twinop's op under PyTorch's distributed engines, on 2 gloo processes on 127.0.0.1, in float64,
each result against the same computation on whole tensors in one process. Prints one JSON object.

- DDP and FSDP2 (fully_shard): parameters after 3 SGD steps against one process; FSDP2 also
  with torch's own gelu(x + b) in the op's place (a control: FSDP2's own error on gloo).
- DTensor: the error before the sharding rules are registered; then, for each placement of x
  and bias and both autograd routes (twinop.torch.bias_act and the op itself), y, dx and dbias
  and their placements, and the collectives of the forward and of the backward (CommDebugMode);
  a gradient penalty on dx alone (second order) and on dx and dbias.
- RMSNorm under DTensor: rows and sequence sharded (each device holds whole rows: no collective),
  and features sharded (the op needs whole rows: DTensor gathers them), both routes
  (twinop.torch.rms_norm and the op), add_rms_norm, and a gradient penalty on dx alone.
- local_map without a rule, with and without in_grad_placements (a PyTorch trap, measured).
- Tensor parallel (Colwise Linear -> BiasAct -> Rowwise Linear): parameters after 3 steps, the
  collectives of one training step; --compile: that step under torch.compile against eager.
"""
import datetime
import json
import os
import signal
import socket
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

import twinop.torch as tt
from twinop.report._support_worker import first_line

RANKS = 2
TIMEOUT_S = 120  # a rank that hangs (a lost peer) is killed after this
STEPS, LR = 3, 0.1
CASES = {  # name -> (x's shape, the dimension of x sharded, whether bias is sharded)
    "rows": ((7, 5), 0, False),
    "sequence": ((3, 5, 4), 1, False),
    "features": ((6, 5), 1, True),
    "rows, bias sharded": ((7, 5), 0, True),
}
ROUTES = {"twinop.torch.bias_act": tt.bias_act, "torch.ops.twinop.bias_act": torch.ops.twinop.bias_act}


def max_error(got, want):
    return float((got.detach() - want.detach()).abs().max())


def _model(bias_act_layer):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32, bias=False), bias_act_layer, nn.Linear(32, 4, bias=False)).double()
    nn.init.uniform_(model[1].bias, -0.5, 0.5)
    return model


class NativeBiasAct(nn.Module):
    """torch's own gelu(x + bias), the control beside twinop's BiasAct."""

    def __init__(self, features):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x):
        return F.gelu(x + self.bias)


def _train(model, batches):
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for x in batches:
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
    return model


def _batches():
    torch.manual_seed(1)
    return [torch.randn(8, 16, dtype=torch.float64) for _ in range(STEPS)]


def _params_error(model, reference):
    full = lambda p: p.full_tensor() if hasattr(p, "full_tensor") else p
    return max(max_error(full(p), q) for p, q in zip(model.parameters(), reference.parameters()))


def data_parallel(rank):
    """DDP and FSDP2: each rank trains on its half of every batch."""
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel

    batches = _batches()
    mine = [x.chunk(RANKS)[rank] for x in batches]
    out = {}
    for name, layer in (("twinop BiasAct", tt.BiasAct), ("torch gelu(x + b)", NativeBiasAct)):
        reference = _train(_model(layer(32)), batches)
        ddp = _train(DistributedDataParallel(_model(layer(32))), mine)
        fsdp = _model(layer(32))
        for module in (*fsdp, fsdp):
            fully_shard(module)
        _train(fsdp, mine)
        out[name] = {"ddp_params_error": _params_error(ddp.module, reference),
                     "fsdp2_params_error": _params_error(fsdp, reference)}
    return out


def _collectives(mode):
    return {str(op).split(".")[-1]: count for op, count in mode.get_comm_counts().items() if count}


def _distribute(t, mesh, shard_dim=None):
    """t as a DTensor: Shard(shard_dim), or Replicate() for None; requires_grad as t."""
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    placement = Replicate() if shard_dim is None else Shard(shard_dim)
    return distribute_tensor(t.detach(), mesh, [placement]).requires_grad_(t.requires_grad)


def _inputs(shape, seed=2):
    torch.manual_seed(seed)
    x, dy = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    return x, torch.randn(shape[-1], dtype=torch.float64), dy


def placements(mesh):
    """For each case and route: values, placements and collectives of the forward and backward."""
    from torch.distributed.tensor.debug import CommDebugMode

    out = {}
    for case, (shape, x_dim, bias_sharded) in CASES.items():
        x, bias, dy = _inputs(shape)
        x.requires_grad_(), bias.requires_grad_()
        y_ref = F.gelu(x + bias)
        dx_ref, dbias_ref = torch.autograd.grad(y_ref, (x, bias), dy)
        for route, fn in ROUTES.items():
            xd, bd = _distribute(x, mesh, x_dim), _distribute(bias, mesh, 0 if bias_sharded else None)
            dyd = _distribute(dy, mesh, x_dim)
            with CommDebugMode() as forward:
                y = fn(xd, bd, "gelu")
            with CommDebugMode() as backward:
                y.backward(dyd)
            out[f"{case} / {route}"] = {
                "x": str(xd.placements[0]), "bias": str(bd.placements[0]), "shape": list(shape),
                "aligned": bias_sharded == (x_dim == len(shape) - 1),  # bias sharded as x's features are
                "y": str(y.placements[0]), "dx": str(xd.grad.placements[0]), "dbias": str(bd.grad.placements[0]),
                "errors": [max_error(y.full_tensor(), y_ref), max_error(xd.grad.full_tensor(), dx_ref),
                           max_error(bd.grad.full_tensor(), dbias_ref)],
                "forward_collectives": _collectives(forward), "backward_collectives": _collectives(backward)}
    return out


def _penalty(fn, x, bias, dy, with_dbias):
    """y's sum plus the squares of dx (and dbias): second order, through the backward's own gradient."""
    y = fn(x, bias)
    grads = torch.autograd.grad(y, (x, bias) if with_dbias else (x,), dy, create_graph=True)
    loss = y.sum() + sum(g.pow(2).sum() for g in grads)
    return torch.autograd.grad(loss, (x, bias))


def second_order(mesh):
    """A gradient penalty on dx alone (the loss leaves dbias unused: autograd gives its gradient
    as a plain zero tensor) and on both, x rows-sharded, against whole tensors."""
    out = {}
    x, bias, dy = _inputs((7, 5), seed=3)
    for with_dbias in (False, True):
        want = _penalty(lambda x, b: F.gelu(x + b), x.clone().requires_grad_(), bias.clone().requires_grad_(),
                        dy, with_dbias)
        for route, fn in ROUTES.items():
            key = f"penalty on dx{' and dbias' if with_dbias else ''} / {route}"
            xd, bd = _distribute(x, mesh, 0).requires_grad_(), _distribute(bias, mesh).requires_grad_()
            try:
                got = _penalty(lambda x, b: fn(x, b, "gelu"), xd, bd, _distribute(dy, mesh, 0), with_dbias)
                out[key] = {"errors": [max_error(g.full_tensor(), w) for g, w in zip(got, want)]}
            except Exception as error:  # the bug this pins: "got mixed torch.Tensor and DTensor"
                out[key] = {"error": first_line(error)}
    return out


RMS_NORM_CASES = {"rows": ((7, 6), 0), "sequence": ((3, 5, 4), 1), "features": ((6, 4), 1)}
RMS_NORM_ROUTES = {"twinop.torch.rms_norm": lambda x, w: tt.rms_norm(x, w, 1e-5, offset=0.5),
                   "torch.ops.twinop.rms_norm": lambda x, w: torch.ops.twinop.rms_norm(x, w, 1e-5, 0.5)[0],
                   "twinop.torch.add_rms_norm": lambda x, w: tt.add_rms_norm(x, x * 0.5, w, 1e-5, offset=0.5)[0]}
RMS_NORM_NATIVE = {"twinop.torch.add_rms_norm": lambda x, w: _rms_norm_composition(x + x * 0.5, w)}


def _rms_norm_composition(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * (w + 0.5)


def rms_norm_placements(mesh):
    """RMSNorm's y, dx and dweight, their placements and collectives, for each case and route."""
    from torch.distributed.tensor.debug import CommDebugMode

    out = {}
    for case, (shape, x_dim) in RMS_NORM_CASES.items():
        x, weight, dy = _inputs(shape, seed=5)
        x.requires_grad_(), weight.requires_grad_()
        for route, fn in RMS_NORM_ROUTES.items():
            y_ref = RMS_NORM_NATIVE.get(route, _rms_norm_composition)(x, weight)
            dx_ref, dweight_ref = torch.autograd.grad(y_ref, (x, weight), dy)
            xd, wd, dyd = _distribute(x, mesh, x_dim), _distribute(weight, mesh), _distribute(dy, mesh, x_dim)
            with CommDebugMode() as forward:
                y = fn(xd, wd)
            with CommDebugMode() as backward:
                y.backward(dyd)
            out[f"{case} / {route}"] = {
                "y": str(y.placements[0]), "dx": str(xd.grad.placements[0]), "dweight": str(wd.grad.placements[0]),
                "errors": [max_error(y.full_tensor(), y_ref), max_error(xd.grad.full_tensor(), dx_ref),
                           max_error(wd.grad.full_tensor(), dweight_ref)],
                "forward_collectives": _collectives(forward), "backward_collectives": _collectives(backward)}
    x, weight, dy = _inputs((7, 5), seed=6)
    want = _penalty(_rms_norm_composition, x.clone().requires_grad_(), weight.clone().requires_grad_(), dy, False)
    for route in ("twinop.torch.rms_norm", "torch.ops.twinop.rms_norm"):
        xd, wd = _distribute(x, mesh, 0).requires_grad_(), _distribute(weight, mesh).requires_grad_()
        try:
            got = _penalty(RMS_NORM_ROUTES[route], xd, wd, _distribute(dy, mesh, 0), False)
            out[f"penalty on dx / {route}"] = {"errors": [max_error(g.full_tensor(), w) for g, w in zip(got, want)]}
        except Exception as error:
            out[f"penalty on dx / {route}"] = {"error": first_line(error)}
    return out


def local_map_trap(mesh):
    """local_map (running the op on local shards, no rule needed): dbias with and without
    in_grad_placements saying it is a Partial sum."""
    from torch.distributed.tensor import Partial, Replicate, Shard
    from torch.distributed.tensor.experimental import local_map

    x, bias, dy = _inputs((8, 5), seed=4)
    x.requires_grad_(), bias.requires_grad_()
    dbias_ref = torch.autograd.grad(F.gelu(x + bias), bias, dy)[0]
    out = {}
    for name, grad_placements in (("default", None), ("in_grad_placements=Partial()", ([Shard(0)], [Partial()]))):
        fn = local_map(tt.bias_act, out_placements=[Shard(0)], in_placements=([Shard(0)], [Replicate()], None),
                       in_grad_placements=grad_placements, device_mesh=mesh)
        xd, bd = _distribute(x, mesh, 0), _distribute(bias, mesh)
        fn(xd, bd, "gelu").backward(_distribute(dy, mesh, 0))
        out[name] = {"dbias": str(bd.grad.placements[0]), "dbias_error": max_error(bd.grad.full_tensor(), dbias_ref)}
    return out


def _tensor_parallel_model(mesh):
    from torch.distributed.tensor import Shard, distribute_tensor
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    model = _model(tt.BiasAct(32))
    model[1].bias = nn.Parameter(distribute_tensor(model[1].bias.detach(), mesh, [Shard(0)]))
    return parallelize_module(model, mesh, {"0": ColwiseParallel(use_local_output=False), "2": RowwiseParallel()})


def tensor_parallel(mesh, compiled):
    """Colwise Linear -> BiasAct (bias Shard(0)) -> Rowwise Linear, the whole batch on each rank."""
    from torch.distributed.tensor.debug import CommDebugMode

    batches = _batches()
    reference = _train(_model(tt.BiasAct(32)), batches)
    model = _train(_tensor_parallel_model(mesh), batches[:-1])
    with CommDebugMode() as last_step:
        _train(model, batches[-1:])
    out = {"params_error": _params_error(model, reference), "step_collectives": _collectives(last_step)}
    if compiled:
        eager, fast = _tensor_parallel_model(mesh), torch.compile(_tensor_parallel_model(mesh))
        start = time.perf_counter()
        fast_loss = fast(batches[0]).pow(2).mean()
        fast_loss.backward()
        out["compile_and_first_step_s"] = time.perf_counter() - start
        eager_loss = eager(batches[0]).pow(2).mean()
        eager_loss.backward()
        grads = zip(fast.parameters(), eager.parameters())
        out["compiled_vs_eager_error"] = max([max_error(fast_loss, eager_loss)]
                                             + [max_error(p.grad.full_tensor(), q.grad.full_tensor()) for p, q in grads])
    return out


def unregistered(mesh):
    """The op on DTensors before register_dtensor_sharding(): DTensor's own error."""
    from torch.distributed.tensor import DTensor

    strategies = DTensor._op_dispatcher.sharding_propagator.op_strategy_funcs
    x, bias, _ = _inputs((7, 5))
    out = {"registered_at_import": torch.ops.twinop.bias_act.default in strategies}
    try:
        tt.bias_act(_distribute(x, mesh, 0), _distribute(bias, mesh))
        out["error"] = None
    except NotImplementedError as error:
        out["error"] = first_line(error)
    tt.register_dtensor_sharding()
    rule = strategies.get(torch.ops.twinop.bias_act.default)
    tt.register_dtensor_sharding()  # a second call changes nothing
    out["registered"] = all(getattr(torch.ops.twinop, name).default in strategies
                            for name in ("bias_act", "bias_act_backward", "bias_act_double_backward"))
    out["second_call_kept_the_rule"] = rule is not None and strategies[torch.ops.twinop.bias_act.default] is rule
    return out


def _rank(rank, port, out_dir, compiled):
    signal.alarm(TIMEOUT_S)
    tensor_imported_first = "torch.distributed.tensor" in sys.modules
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=RANKS,
                            timeout=datetime.timedelta(seconds=60))
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (RANKS,))
    out = {"torch": torch.__version__, "abi": tt.ABI, "ranks": RANKS}
    sections = {"unregistered": lambda: unregistered(mesh), "data_parallel": lambda: data_parallel(rank),
                "placements": lambda: placements(mesh), "second_order": lambda: second_order(mesh),
                "rms_norm": lambda: rms_norm_placements(mesh),
                "local_map": lambda: local_map_trap(mesh), "tensor_parallel": lambda: tensor_parallel(mesh, compiled)}
    for name, section in sections.items():
        start = time.perf_counter()
        out[name] = section()
        out.setdefault("seconds", {})[name] = time.perf_counter() - start
    out["unregistered"]["tensor_imported_before_twinop"] = tensor_imported_first
    dist.destroy_process_group()
    with open(os.path.join(out_dir, f"{rank}.json"), "w") as f:
        json.dump(out, f)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv):
    if "lo" in dict(socket.if_nameindex()).values():
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's own traffic on loopback too
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_rank, args=(_free_port(), out_dir, "--compile" in argv), nprocs=RANKS, join=True)
        with open(os.path.join(out_dir, "0.json")) as f:
            print(json.dumps(json.load(f)))


if __name__ == "__main__":
    main(sys.argv[1:])
