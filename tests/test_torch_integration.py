"""The PyTorch op as a native op: torch.compile, torch.export (and a fresh process loading it),
autocast, devices, requires_grad, the BiasAct module and the worked example."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
tt = pytest.importorskip("twinop.torch", exc_type=ImportError)

from torch import nn  # noqa: E402
from torch._dynamo.utils import counters  # noqa: E402

import twinop  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mlp(act="gelu"):
    """nn.Linear(bias=False) + BiasAct: the fused replacement of act(nn.Linear(x))."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8, bias=False), tt.BiasAct(8, act))
    nn.init.normal_(model[1].bias)  # not zeros, so a lost bias shows
    return model


def forward_backward(fn, x, params):
    """fn(x), and the gradients of a fixed loss with respect to x and params."""
    x = x.detach().requires_grad_()
    y = fn(x)
    grads = torch.autograd.grad((y * torch.linspace(-1, 1, y.shape[-1])).sum(), [x, *params])
    return y.detach(), grads


def assert_same_results(got, want):
    (y, grads), (want_y, want_grads) = got, want
    torch.testing.assert_close(y, want_y)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w)


# torch.compile


def test_compile_function_fullgraph_forward_and_backward():
    torch._dynamo.reset()
    counters.clear()
    bias = torch.randn(8, requires_grad=True)

    def fn(x):  # the op between native ops: one graph, no break around it
        return tt.bias_act(x * 2, bias, "silu").sum(-1, keepdim=True) + x

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    x = torch.randn(5, 8)
    assert_same_results(forward_backward(compiled, x, [bias]), forward_backward(fn, x, [bias]))
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]


def test_compile_module_with_inductor_forward_and_backward():
    torch._dynamo.reset()
    counters.clear()
    model = mlp()
    compiled = torch.compile(model, fullgraph=True)  # the default backend, inductor
    x = torch.randn(5, 6)
    params = list(model.parameters())
    assert_same_results(forward_backward(compiled, x, params), forward_backward(model, x, params))
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]


def test_compile_under_autocast():
    torch._dynamo.reset()
    model = mlp()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(5, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, got = model(x), compiled(x)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, want)


# torch.export

EXPORT_LOADER = textwrap.dedent("""
    import sys, torch
    path, x_path, out_path = sys.argv[1:]
    try:  # before the op is registered: torch names it in a warning and raises
        torch.export.load(path)
        sys.exit("loaded without twinop.torch")
    except RuntimeError:
        pass
    import twinop.torch
    torch.save(torch.export.load(path).module()(torch.load(x_path)), out_path)
""")


def test_export_save_and_load_in_a_fresh_process(tmp_path):
    model = mlp("gelu_tanh")
    batch = torch.export.Dim("batch")
    exported = torch.export.export(model, (torch.randn(4, 6),), dynamic_shapes=({0: batch},))
    targets = [node.target for node in exported.graph.nodes if node.op == "call_function"]
    assert torch.ops.twinop.bias_act.default in targets  # kept as one op, not decomposed
    path, x_path, out_path = (str(tmp_path / name) for name in ("model.pt2", "x.pt", "y.pt"))
    torch.export.save(exported, path)
    x = torch.randn(7, 6)  # another batch size than the one exported with
    torch.save(x, x_path)
    run = subprocess.run([sys.executable, "-c", EXPORT_LOADER, path, x_path, out_path],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "twinop.bias_act" in run.stderr  # the failed load before the import named the op
    torch.testing.assert_close(torch.load(out_path), model(x).detach())


# autocast


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_in_the_chosen_dtype_and_grads_reach_the_fp32_bias(dtype):
    model = mlp()
    x = torch.randn(5, 6)
    with torch.autocast("cpu", dtype=dtype):
        h = model[0](x)  # autocast nn.Linear: low-precision output
        y = model[1](h)  # fp32 bias parameter
    assert h.dtype == dtype and y.dtype == dtype
    dy = torch.randn_like(y)
    y.backward(dy)
    bias = model[1].bias
    assert bias.grad.dtype == torch.float32
    # Exactly the op run by hand in the autocast dtype.
    low_bias = bias.detach().to(dtype)
    torch.testing.assert_close(y, tt.bias_act(h.detach(), low_bias), rtol=0, atol=0)
    want_dbias = torch.ops.twinop.bias_act_backward(dy, h.detach(), low_bias, "gelu")[1]
    torch.testing.assert_close(bias.grad, want_dbias.float(), rtol=0, atol=0)


def test_autocast_leaves_float64_alone_as_native_ops():
    x, bias = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert tt.bias_act(x, bias).dtype == torch.float64


def test_dtype_mismatch_raises_outside_autocast():
    x, bias = torch.randn(3, 4, dtype=torch.bfloat16), torch.randn(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tt.bias_act(x, bias)
    with torch.autocast("cpu", enabled=False), pytest.raises(TypeError, match="bias must have the dtype of x"):
        tt.bias_act(x, bias)
    with pytest.raises(TypeError, match="bias must have the dtype of x"):
        tt.bias_act(x, bias)


# devices and requires_grad, as for native ops


@pytest.mark.parametrize("x_device,bias_device", [("cpu", "meta"), ("meta", "cpu")])
def test_inputs_on_different_devices_raise(x_device, bias_device):
    x, bias = torch.randn(3, 4, device=x_device), torch.randn(4, device=bias_device)
    with pytest.raises(RuntimeError, match=f"bias must be on the device of x \\({x_device}\\); got {bias_device}"):
        tt.bias_act(x, bias)
    with pytest.raises(RuntimeError, match="bias must be on the device of x"):
        torch.ops.twinop.bias_act_backward(x, x, bias, "gelu")
    with pytest.raises(RuntimeError):  # as a native op does
        x + bias


def test_meta_tensors_give_shapes_without_computing():
    x = torch.empty(2, 3, 4, device="meta", requires_grad=True)
    model = tt.BiasAct(4, device="meta")
    y = model(x)
    assert y.device.type == "meta" and y.shape == (2, 3, 4)
    y.sum().backward()
    assert x.grad.shape == x.shape and model.bias.grad.shape == (4,)


@pytest.mark.parametrize("x_grad,bias_grad", [(False, True), (True, False), (False, False), (True, True)])
def test_requires_grad_as_a_native_op(x_grad, bias_grad):
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=x_grad)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=bias_grad)
    y, native = tt.bias_act(x, bias, "silu"), nn.functional.silu(x + bias)
    assert y.requires_grad == native.requires_grad == (x_grad or bias_grad)
    if not y.requires_grad:
        return
    wanted = [t for t in (x, bias) if t.requires_grad]
    for got, want in zip(torch.autograd.grad(y.sum(), wanted), torch.autograd.grad(native.sum(), wanted)):
        torch.testing.assert_close(got, want)


def test_no_grad_records_nothing():
    bias = torch.randn(4, requires_grad=True)
    with torch.no_grad():
        assert not tt.bias_act(torch.randn(3, 4), bias).requires_grad


# the BiasAct module


def test_bias_act_module_holds_a_zero_bias_and_prints_its_settings():
    module = tt.BiasAct(5, "relu", dtype=torch.float64)
    assert [name for name, _ in module.named_parameters()] == ["bias"]
    assert module.bias.dtype == torch.float64 and torch.equal(module.bias, torch.zeros(5, dtype=torch.float64))
    assert repr(module) == "BiasAct(features=5, act='relu')"
    assert list(module.state_dict()) == ["bias"]


@pytest.mark.parametrize("act", twinop.ACTIVATIONS)
def test_linear_without_bias_then_bias_act_equals_linear_then_activation(act):
    model = mlp(act)
    reference = nn.Linear(6, 8)
    with torch.no_grad():
        reference.weight.copy_(model[0].weight)
        reference.bias.copy_(model[1].bias)
    native_act = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU("tanh"), "silu": nn.SiLU(), "relu": nn.ReLU()}[act]
    x = torch.randn(5, 6)
    torch.testing.assert_close(model(x), native_act(reference(x)))


def test_bias_act_module_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="act must be one of gelu"):
        tt.BiasAct(4, "tanh")


# the worked example


def test_torch_example_trains():
    run = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "torch_mlp.py")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    losses = [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", run.stdout, re.M)]
    assert len(losses) >= 2 and losses[-1] < 0.5 * losses[0], run.stdout
