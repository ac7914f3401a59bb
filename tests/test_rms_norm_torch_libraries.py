"""What the stable-ABI library does in Python for RMSNorm's raw ops where the classic one does it in
C++, checked on whichever library is loaded (tests/test_torch_stable.py reruns this file on the
stable one): the refusal of dual tensors, in every op and argument, and CUDA autocast's float32."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("twinop.torch", exc_type=ImportError)

from torch.autograd import forward_ad  # noqa: E402

ops = torch.ops.twinop


def calls(x, weight, rstd):
    """Each raw op, its tensor arguments by name, and its float arguments."""
    return [(ops.rms_norm, {"x": x, "weight": weight}, (1e-6, 0.0)),
            (ops.add_rms_norm, {"x": x, "residual": x, "weight": weight}, (1e-6, 0.0)),
            (ops.rms_norm_backward, {"dy": x, "x": x, "rstd": rstd, "weight": weight}, (0.0,)),
            (ops.add_rms_norm_backward, {"dy": x, "ds": x, "s": x, "rstd": rstd, "weight": weight}, (0.0,))]


@pytest.mark.parametrize("index", range(4), ids=["rms_norm", "add_rms_norm", "rms_norm_backward",
                                                 "add_rms_norm_backward"])
def test_raw_ops_refuse_a_dual_tensor_in_any_argument(index):
    """Their autograd has no forward-mode rule: a tangent would be dropped, so it is an error,
    naming the argument and the entry point to call."""
    x, weight, rstd = (torch.randn(*shape, dtype=torch.float64) for shape in ((3, 4), (4,), (3,)))
    op, tensors, floats = calls(x, weight, rstd)[index]
    message = "^twinop.rms_norm: {} carries a forward-mode tangent, .* call twinop.torch.rms_norm for forward-mode AD$"
    with forward_ad.dual_level():
        for name in tensors:
            args = [forward_ad.make_dual(t, torch.ones_like(t)) if k == name else t for k, t in tensors.items()]
            with pytest.raises(RuntimeError, match=message.format(name)):
                op(*args, *floats)
        op(*tensors.values(), *floats)  # without a tangent it runs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU available")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_runs_the_raw_ops_in_float32(dtype):
    """As F.rms_norm on CUDA: half-precision inputs are cast to float32, so the outputs are float32."""
    x, residual = torch.randn(3, 64, device="cuda", dtype=dtype), torch.randn(3, 64, device="cuda", dtype=dtype)
    weight = torch.randn(64, device="cuda", dtype=dtype)
    with torch.autocast("cuda", dtype=dtype):
        y, rstd = ops.rms_norm(x, weight, 1e-6, 0.0)
        y2, s, _ = ops.add_rms_norm(x, residual, weight, 1e-6, 0.0)
        native = torch.nn.functional.rms_norm(x, (64,), weight, 1e-6)
    assert y.dtype == y2.dtype == s.dtype == native.dtype == torch.float32
    assert torch.equal(y, ops.rms_norm(x.float(), weight.float(), 1e-6, 0.0)[0])
    assert torch.equal(s, x.float() + residual.float())
