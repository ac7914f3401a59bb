"""RMSNorm's CUDA kernels through the PyTorch binding: the raw ops (forward, backward, add_rms_norm and
its backward) and twinop.torch's entry points, every dtype pair (float16 and bfloat16 x with float32
weights too) against the float64 reference and against the CPU kernels, on odd widths, rows of one
block, of several blocks (a cluster each where the GPU has clusters) and of more slices than a
cluster takes (the second-pass paths), up to 600,000 columns; non-contiguous, misaligned (bit for
bit the aligned results) and empty inputs, NaN and Inf, dweight bit-identical from call to call,
64-bit indexing, streams and CUDA graphs. Skipped without a GPU."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU available", allow_module_level=True)

import twinop.torch as tt  # noqa: E402  (imported only where a GPU exists)
from cases import DTYPE_PAIRS, RMS_NORM_ATTRS, SHAPES, make_rms_norm_inputs, rows_of  # noqa: E402
from test_cuda import misaligned_copy, past_2_to_the_31  # noqa: E402
from test_rms_norm import SPECIAL_ROWS, check, compute_sum, expected  # noqa: E402
from tolerances import assert_close, tolerance  # noqa: E402
from twinop import reference  # noqa: E402

ops = torch.ops.twinop

# The shared shapes, and the kernels' layouts (cuda/rms_norm_plan.cuh): narrow rows many to a
# block (8, 64 columns), rows of whole 16-byte groups and odd widths (1000, 4096; 1027, 4099:
# element by element), then rows wider than a block: bfloat16 forward 65,536 columns a block,
# backward 16,384 (float32: half that), so 70,000 bfloat16 columns are 2 forward and 5 backward
# slices (clusters), and 600,000 are 10 and 37 (more than a cluster takes: a second pass).
CUDA_SHAPES = SHAPES + [(300, 8), (65, 64), (7, 1000), (64, 4096), (17, 4099), (9, 1027), (3, 70_000)]
WIDE_SHAPES = [(2, 600_000), (3, 300_000)]


class Cuda:
    """Names test_rms_norm.check needs: output dtypes and values as float64 numpy arrays."""

    def dtype_name(self, t):
        return str(t.dtype).removeprefix("torch.")

    def float64(self, t):
        return t.detach().to(torch.float64).cpu().numpy()


CUDA = Cuda()


def on(device, dtypes, x, w, dy, residual, ds):
    """The inputs as tensors on device: x, dy, residual, ds of dtypes[0], w of dtypes[1]."""
    dtype, weight_dtype = (getattr(torch, d) for d in dtypes)
    return (torch.tensor(x, dtype=dtype, device=device), torch.tensor(w, dtype=weight_dtype, device=device),
            *(torch.tensor(a, dtype=dtype, device=device) for a in (dy, residual, ds)))


def run_ops(x, w, dy, residual, ds, eps, offset):
    """Every raw op once: rms_norm's y and rstd and its backward (from that rstd), add_rms_norm's
    y, s and rstd and its backward at that s."""
    y, rstd = ops.rms_norm(x, w, eps, offset)
    dx, dweight = ops.rms_norm_backward(dy, x, rstd, w, offset)
    y_add, s, rstd_add = ops.add_rms_norm(x, residual, w, eps, offset)
    dx_add, dweight_add = ops.add_rms_norm_backward(dy, ds, s, rstd_add, w, offset)
    return {"y": y, "rstd": rstd, "dx": dx, "dweight": dweight}, {"y": y_add, "s": s, "rstd": rstd_add,
                                                                   "dx": dx_add, "dweight": dweight_add}


def check_against_reference(values, dtypes, eps, offset, got):
    x, w, dy, residual, ds = values
    plain, add = got
    rows = rows_of(x.shape)
    check(CUDA, plain, expected(x, w, dy, eps, offset, dtypes[0]), dtypes, rows)
    s = compute_sum(x, residual, dtypes[0])
    want_add = {**expected(s, w, dy, eps, offset, dtypes[0]), "s": s}
    want_add["dx"] = want_add["dx"] + ds  # d_residual: RMSNorm's dx at s, plus the gradient at s
    check(CUDA, add, want_add, dtypes, rows)
    for result in (*plain.values(), *add.values()):
        assert result.is_cuda


@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=str)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids="-".join)
def test_raw_ops_match_reference(dtypes, shape):
    values = make_rms_norm_inputs(shape, *dtypes, seed=1)
    for eps, offset in RMS_NORM_ATTRS:
        check_against_reference(values, dtypes, eps, offset, run_ops(*on("cuda", dtypes, *values), eps, offset))


@pytest.mark.parametrize("shape", WIDE_SHAPES, ids=str)
@pytest.mark.parametrize("dtypes", [("bfloat16", "float32"), ("float32", "float32")], ids="-".join)
def test_rows_of_more_slices_than_a_cluster_match_reference(dtypes, shape):
    values = make_rms_norm_inputs(shape, *dtypes, seed=2)
    check_against_reference(values, dtypes, 1e-6, 1.0, run_ops(*on("cuda", dtypes, *values), 1e-6, 1.0))


@pytest.mark.parametrize("shape", [(64, 4096), (17, 4099), (3, 70_000)], ids=str)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids="-".join)
def test_cuda_matches_the_cpu_kernels(dtypes, shape):
    """The same inputs through the CPU kernels: each reduction adds in its own order, so within
    the dtype's tolerance, not bit for bit."""
    values = make_rms_norm_inputs(shape, *dtypes, seed=3)
    rows = rows_of(shape)
    for eps, offset in RMS_NORM_ATTRS[:2]:
        cuda_results = run_ops(*on("cuda", dtypes, *values), eps, offset)
        cpu_results = run_ops(*on("cpu", dtypes, *values), eps, offset)
        for got, want in zip(cuda_results, cpu_results):
            for name, t in want.items():
                bound = {"rstd": "float64" if dtypes[0] == "float64" else "float32", "dweight": dtypes[1]}
                assert got[name].dtype == t.dtype
                assert_close(CUDA.float64(got[name]), CUDA.float64(t), bound.get(name, dtypes[0]),
                             summed=rows if name == "dweight" else 1, what=name)


@pytest.mark.parametrize("dtypes", [("bfloat16", "float32"), ("float16", "float16"), ("float32", "float32")],
                         ids="-".join)
def test_autograd_entry_points_on_cuda_tensors(dtypes):
    """twinop.torch.rms_norm and add_rms_norm: y, s and the gradients of every input (the fused
    backward ops on the GPU)."""
    x, w, dy, residual, ds = values = make_rms_norm_inputs((33, 520), *dtypes, seed=4)
    xt, wt, dyt, rt, dst = on("cuda", dtypes, *values)
    leaves = [t.requires_grad_() for t in (xt, wt, rt)]
    y = tt.rms_norm(leaves[0], leaves[1], 1e-5, offset=0.5)
    dx, dweight = torch.autograd.grad(y, leaves[:2], dyt)
    check(CUDA, {"y": y, "dx": dx, "dweight": dweight}, expected(x, w, dy, 1e-5, 0.5, dtypes[0]), dtypes, 33)
    y_add, s = tt.add_rms_norm(*leaves[::2], leaves[1], 1e-5, offset=0.5)
    dx_add, dweight_add, dr = torch.autograd.grad((y_add, s), leaves, (dyt, dst))
    s_want = compute_sum(x, residual, dtypes[0])
    want = {**expected(s_want, w, dy, 1e-5, 0.5, dtypes[0]), "s": s_want}
    want["dx"] = want["dx"] + ds
    check(CUDA, {"y": y_add, "s": s, "dx": dx_add, "dweight": dweight_add}, want, dtypes, 33)
    assert torch.equal(dr, dx_add)  # d_residual is dx


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_matches_pytorchs_fused_rms_norm(dtype):
    x = torch.randn(256, 2048, device="cuda", dtype=dtype)
    w = torch.randn(2048, device="cuda", dtype=dtype)
    dy = torch.randn_like(x)
    got = tt.rms_norm(x.requires_grad_(), w.requires_grad_(), 1e-6)
    got_grads = torch.autograd.grad(got, (x, w), dy)
    xn, wn = x.detach().requires_grad_(), w.detach().requires_grad_()
    want = torch.nn.functional.rms_norm(xn, (2048,), wn, 1e-6)
    want_grads = torch.autograd.grad(want, (xn, wn), dy)
    name = str(dtype).removeprefix("torch.")
    for what, a, b, summed in (("y", got, want, 1), ("dx", got_grads[0], want_grads[0], 1),
                               ("dweight", got_grads[1], want_grads[1], 256)):
        # both are off the exact values by up to the tolerance
        assert_close(CUDA.float64(a), CUDA.float64(b), name, summed=2 * summed, what=what)


VIEWS = {"transposed": lambda t: t.t(), "every other column": lambda t: t[:, ::2],
         "every third row": lambda t: t[::3]}


@pytest.mark.parametrize("view", VIEWS)
def test_non_contiguous_inputs(view):
    values = make_rms_norm_inputs((96, 96), "float32", "float32", seed=5)
    x, w, dy, residual, ds = (VIEWS[view](t) if t.dim() == 2 else t for t in on("cuda", ("float32",) * 2, *values))
    w = w[: x.shape[-1]]
    assert not x.is_contiguous()
    got = run_ops(x, w, dy, residual, ds, 1e-5, 0.0)
    check_against_reference(tuple(CUDA.float64(t) for t in (x, w, dy, residual, ds)), ("float32", "float32"), 1e-5,
                            0.0, got)


@pytest.mark.parametrize("misaligned", ["x", "weight", "dy", "residual", "ds", "x,dy,weight"])
@pytest.mark.parametrize("shape", [(48, 1024), (5, 70_000)], ids=str)
@pytest.mark.parametrize("dtypes", [("bfloat16", "bfloat16"), ("float16", "float32"), ("float32", "float32"),
                                    ("float64", "float64")], ids="-".join)
def test_misaligned_inputs_give_the_aligned_bits(dtypes, shape, misaligned):
    """A tensor off a 16-byte boundary moves element by element, the same elements to the same
    threads: every output, dweight too, is bit for bit the all-aligned launch's."""
    names = ("x", "weight", "dy", "residual", "ds")
    aligned = dict(zip(names, on("cuda", dtypes, *make_rms_norm_inputs(shape, *dtypes, seed=6))))
    shifted = dict(aligned, **{name: misaligned_copy(aligned[name]) for name in misaligned.split(",")})
    want = run_ops(*aligned.values(), 1e-6, 0.5)
    got = run_ops(*shifted.values(), 1e-6, 0.5)
    for want_op, got_op in zip(want, got):
        for name in want_op:
            assert torch.equal(got_op[name], want_op[name]), f"{name} differs from the aligned launch's"


@pytest.mark.parametrize("shape", [(8192, 1024), (64, 70_000), (2, 600_000)], ids=str)
@pytest.mark.parametrize("dtypes", [("bfloat16", "float32"), ("float32", "float32")], ids="-".join)
def test_dweight_and_dx_are_bit_reproducible(dtypes, shape):
    """The same bits call after call: no atomics, every sum in an order the shape fixes."""
    args = on("cuda", dtypes, *make_rms_norm_inputs(shape, *dtypes, seed=7))
    first = run_ops(*args, 1e-6, 0.0)
    assert torch.isfinite(first[0]["dweight"]).all() and first[0]["dweight"].abs().sum() > 0
    for _ in range(3):
        for want, got in zip(first, run_ops(*args, 1e-6, 0.0)):
            for name in want:
                assert torch.equal(got[name], want[name]), name


@pytest.mark.parametrize("shape", [(0, 16), (2, 0, 16), (4, 0), (0,), (3, 0, 0)], ids=str)
@pytest.mark.parametrize("dtypes", [("bfloat16", "float32"), ("float32", "float32")], ids="-".join)
def test_empty_inputs(dtypes, shape):
    """No rows: dweight is a sum of no terms, zeros. No columns: rstd is 1 / sqrt(0 / 0 + eps), NaN,
    as on the CPU and in the composition."""
    x, w, dy, residual, ds = on("cuda", dtypes, *make_rms_norm_inputs(shape, *dtypes))
    torch.full((4096,), float("nan"), device="cuda")  # freed at once: an unwritten dweight would read NaN
    for results in run_ops(x, w, dy, residual, ds, 1e-6, 0.0):
        assert results["y"].shape == results["dx"].shape == shape and results["rstd"].shape == shape[:-1]
        assert torch.equal(results["dweight"], torch.zeros_like(w)), "dweight of no rows must be zeros"
        assert torch.isnan(results["rstd"]).all()
    cpu = ops.rms_norm(x.cpu(), w.cpu(), 1e-6, 0.0)[1]
    assert torch.equal(torch.isnan(cpu), torch.isnan(ops.rms_norm(x, w, 1e-6, 0.0)[1].cpu()))


@pytest.mark.parametrize("eps", [1e-6, 0.0])
def test_nan_inf_and_zero_rows_as_the_reference(eps):
    w, dy = np.array([1.0, -0.5, 2.0, 0.25]), np.ones_like(SPECIAL_ROWS)
    x = torch.tensor(SPECIAL_ROWS, device="cuda")
    y, rstd = ops.rms_norm(x, torch.tensor(w, device="cuda"), eps, 0.0)
    dx, _ = ops.rms_norm_backward(torch.tensor(dy, device="cuda"), x, rstd, torch.tensor(w, device="cuda"), 0.0)
    want = expected(SPECIAL_ROWS, w, dy, eps, 0.0, "float64")
    for name, got in (("y", y), ("rstd", rstd), ("dx", dx)):
        np.testing.assert_array_equal(np.isnan(CUDA.float64(got)), np.isnan(want[name]), err_msg=name)
        assert_close(CUDA.float64(got), want[name], "float64", what=name)


def test_inputs_left_unmodified():
    args = on("cuda", ("bfloat16", "float32"), *make_rms_norm_inputs((33, 520), "bfloat16", "float32", seed=8))
    before = [t.clone() for t in args]
    run_ops(*args, 1e-6, 0.0)
    for original, now in zip(before, args):
        assert torch.equal(original, now)


@pytest.mark.parametrize("shape", [(1024, 65_536), (64, 262_144)], ids=str)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_wide_rows(shape, dtype):
    """The benchmark's wide rows, every row checked: y, rstd and dx against float64 PyTorch on the
    GPU (the reference's formulas), dweight against its float64 column sums."""
    gen = torch.Generator(device="cuda").manual_seed(9)
    x = torch.randn(shape, generator=gen, device="cuda").to(dtype)
    w = torch.randn(shape[-1], generator=gen, device="cuda").to(dtype)
    dy = torch.randn(shape, generator=gen, device="cuda").to(dtype)
    y, rstd = ops.rms_norm(x, w, 1e-6, 0.0)
    dx, dweight = ops.rms_norm_backward(dy, x, rstd, w, 0.0)
    x64, w64, dy64 = x.double(), w.double(), dy.double()
    rstd64 = torch.rsqrt(x64.square().mean(-1, keepdim=True) + 1e-6)
    x_hat = x64 * rstd64
    g = dy64 * w64
    want = {"y": x_hat * w64, "rstd": rstd64[:, 0], "dx": rstd64 * (g - x_hat * (g * x_hat).mean(-1, keepdim=True)),
            "dweight": (dy64 * x_hat).sum(0)}
    name = str(dtype).removeprefix("torch.")
    for what, got in (("y", y), ("rstd", rstd), ("dx", dx), ("dweight", dweight)):
        rtol, atol = tolerance("float32" if what == "rstd" else name, shape[0] if what == "dweight" else 1)
        assert torch.allclose(got.double(), want[what], rtol=rtol, atol=atol), what


def test_more_than_2_to_the_31_elements():
    """bfloat16 x of 2^31 + 4096 elements: rows past the 2^31st element are normalized and
    differentiated, and summed into dweight."""
    x, w, dy, sampled = past_2_to_the_31(torch.float32)
    rows, cols = x.shape
    try:
        y, rstd = ops.rms_norm(x, w, 1e-6, 0.0)
        dx, dweight = ops.rms_norm_backward(dy, x, rstd, w, 0.0)
        for r in sampled:
            xr, wr, dyr = (CUDA.float64(t) for t in (x[r], w, dy[r]))
            want_y, want_rstd = reference.rms_norm(xr, wr, 1e-6)
            want_dx, _ = reference.rms_norm_backward(dyr, xr, wr, 1e-6)
            assert_close(CUDA.float64(y[r]), want_y, "bfloat16", what=f"y row {r}")
            assert_close(CUDA.float64(rstd[r]), want_rstd, "float32", what=f"rstd row {r}")
            assert_close(CUDA.float64(dx[r]), want_dx, "bfloat16", what=f"dx row {r}")
        del y, dx
        want = torch.zeros(cols, device="cuda", dtype=torch.float64)
        for start in range(0, rows, 32768):  # dy * x_hat in float64 chunks
            chunk = x[start:start + 32768].double()
            want += (dy[start:start + 32768].double() * chunk * rstd[start:start + 32768, None].double()).sum(0)
            del chunk
        assert_close(CUDA.float64(dweight), CUDA.float64(want), "float32", summed=rows, what="dweight")
    finally:
        del x, dy
        torch.cuda.empty_cache()


def test_runs_on_the_current_stream_only():
    """With the default stream held busy by a long kernel, every op completes on a side stream."""
    args = on("cuda", ("float32", "float32"), *make_rms_norm_inputs((256, 1024), "float32", "float32", seed=10))
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):  # warm the allocator's blocks for this stream: no cudaMalloc later
        run_ops(*args, 1e-6, 0.0)
    torch.cuda.synchronize()
    torch.cuda._sleep(2_000_000_000)  # about a second of GPU time on the default stream
    with torch.cuda.stream(side):
        got = run_ops(*args, 1e-6, 0.0)
        side.synchronize()
        assert not torch.cuda.default_stream().query(), "an op waited for the default stream"
    torch.cuda.synchronize()
    check_against_reference(tuple(CUDA.float64(t) for t in args), ("float32", "float32"), 1e-6, 0.0, got)


@pytest.mark.parametrize("shape", [(130, 776), (3, 70_000)], ids=str)
def test_cuda_graph_capture_and_replay(shape):
    """Every op captures into one CUDA graph (no allocation, no synchronization, a cluster launch
    included) and replays on the inputs' new values."""
    dtypes = ("bfloat16", "float32")
    args = on("cuda", dtypes, *make_rms_norm_inputs(shape, *dtypes, seed=11))
    warmup = torch.cuda.Stream()
    warmup.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(warmup):
        run_ops(*args, 1e-6, 0.0)
    torch.cuda.current_stream().wait_stream(warmup)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        results = run_ops(*args, 1e-6, 0.0)
    for seed in range(3):
        for static, fresh in zip(args, on("cuda", dtypes, *make_rms_norm_inputs(shape, *dtypes, seed=seed))):
            static.copy_(fresh)
        graph.replay()
        check_against_reference(tuple(CUDA.float64(t) for t in args), dtypes, 1e-6, 0.0, results)


def test_gradcheck_float64():
    x, w, _, r, _ = on("cuda", ("float64", "float64"), *make_rms_norm_inputs((5, 7), "float64", "float64", seed=12))
    leaves = tuple(t.requires_grad_() for t in (x, r, w))
    assert torch.autograd.gradcheck(lambda a, b: tt.rms_norm(a, b, 1e-5, offset=0.5), (leaves[0], leaves[2]))
    assert torch.autograd.gradcheck(lambda a, b, c: tt.add_rms_norm(a, b, c, 1e-5, offset=0.5), leaves)
    assert torch.autograd.gradgradcheck(lambda a, b: tt.rms_norm(a, b, 1e-5, offset=0.5), (leaves[0], leaves[2]))


def test_opcheck():
    args = on("cuda", ("bfloat16", "float32"), *make_rms_norm_inputs((2, 3, 40), "bfloat16", "float32", seed=14))
    x, w, dy, residual, ds = args
    y, rstd = ops.rms_norm(x, w, 1e-6, 0.5)
    _, s, rstd_add = ops.add_rms_norm(x, residual, w, 1e-6, 0.5)
    torch.library.opcheck(ops.rms_norm.default, (x, w, 1e-6, 0.5))
    torch.library.opcheck(ops.add_rms_norm.default, (x, residual, w, 1e-6, 0.5))
    torch.library.opcheck(ops.rms_norm_backward.default, (dy, x, rstd, w, 0.5))
    torch.library.opcheck(ops.add_rms_norm_backward.default, (dy, ds, s, rstd_add, w, 0.5))
