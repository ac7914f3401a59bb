"""The CUDA kernels through the PyTorch binding: forward, backward and double backward, every
activation x dtype against the float64 reference, on aligned rows, odd widths (vector bodies with
element-wise heads and tails) and misaligned pointers, 64-bit indexing, streams, CUDA graphs,
determinism of dbias and d_bias, autograd to second order and torch.library registration.
Skipped without a GPU."""
import math

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU available", allow_module_level=True)

import twinop.torch as tt  # noqa: E402  (imported only where a GPU exists)
from cases import (ACTIVATIONS, DTYPES, SHAPES, SPECIAL_X, make_double_backward_inputs, make_inputs,  # noqa: E402
                   rows_of)
from tolerances import assert_close  # noqa: E402
from twinop import reference  # noqa: E402

# The shared shapes (odd, or narrower than one 16-byte vector), two whose rows all start on a
# 16-byte boundary (one with a partly idle last block of columns), and two odd widths over
# several blocks of columns (each row's vectors start at a different element).
CUDA_SHAPES = SHAPES + [(7, 1000), (64, 4096), (17, 4099), (9, 1027)]

forward_op = torch.ops.twinop.bias_act
backward_op = torch.ops.twinop.bias_act_backward
double_backward_op = torch.ops.twinop.bias_act_double_backward


def cuda_inputs(shape, dtype_name, seed=0):
    """The shared test inputs (cases.make_inputs) as GPU tensors of dtype_name."""
    return tuple(torch.tensor(a, dtype=getattr(torch, dtype_name), device="cuda")
                 for a in make_inputs(shape, dtype_name, seed))


def to_numpy(t):
    return t.detach().to(torch.float64).cpu().numpy()


def check_forward_and_backward(x, bias, dy, act, dtype_name):
    """Runs both ops and compares y, dx and dbias with the float64 reference."""
    y = forward_op(x, bias, act)
    dx, dbias = backward_op(dy, x, bias, act)
    x_np, b_np, dy_np = to_numpy(x), to_numpy(bias), to_numpy(dy)
    assert_close(to_numpy(y), reference.bias_act(x_np, b_np, act), dtype_name, what="y")
    dx_ref, dbias_ref = reference.bias_act_backward(dy_np, x_np, b_np, act)
    assert_close(to_numpy(dx), dx_ref, dtype_name, what="dx")
    assert_close(to_numpy(dbias), dbias_ref, dtype_name, summed=rows_of(x.shape), what="dbias")
    for t in (y, dx, dbias):
        assert t.device == x.device and t.dtype == x.dtype
    return y, dx, dbias


def misaligned_copy(t):
    """A contiguous copy of t whose data pointer is one element past a 16-byte boundary."""
    flat = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    view = flat[1:].view(t.shape)
    view.copy_(t)
    assert view.data_ptr() % 16 != 0
    return view


@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=str)
@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_matches_reference(shape, dtype_name, act):
    check_forward_and_backward(*cuda_inputs(shape, dtype_name), act, dtype_name)


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nan_and_inf_propagate_as_the_reference(act, dtype_name):
    x = torch.tensor(SPECIAL_X, dtype=getattr(torch, dtype_name), device="cuda")
    bias = torch.zeros(x.shape[-1], dtype=x.dtype, device="cuda")
    check_forward_and_backward(x, bias, torch.ones_like(x), act, dtype_name)


@pytest.mark.parametrize("misaligned", ["x", "bias", "dy", "x,dy"])
@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_misaligned_pointers_give_identical_results(misaligned, dtype_name, act):
    """Tensors one element off a 16-byte boundary move element by element beside the aligned
    output; the results match the reference and, bit for bit, the all-aligned launch's (the
    launch plan and the summation order ignore alignment)."""
    aligned = dict(zip(("x", "bias", "dy"), cuda_inputs((48, 1024), dtype_name, seed=7)))
    shifted = dict(aligned, **{name: misaligned_copy(aligned[name]) for name in misaligned.split(",")})
    vector_results = check_forward_and_backward(aligned["x"], aligned["bias"], aligned["dy"], act, dtype_name)
    shifted_results = check_forward_and_backward(shifted["x"], shifted["bias"], shifted["dy"], act, dtype_name)
    for name, v, s in zip(("y", "dx", "dbias"), vector_results, shifted_results):
        assert torch.equal(v, s), f"{name} differs between the aligned and the misaligned launch"


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float32"])
def test_odd_width_matches_the_same_rows_in_an_aligned_width(dtype_name):
    """Rows of an odd width (each starting at its own alignment: vector bodies, element-wise heads
    and tails) give bit for bit what the same rows give padded to an aligned width."""
    x, bias, dy = cuda_inputs((40, 1027), dtype_name, seed=9)
    padded = [torch.nn.functional.pad(t, (0, 5)) for t in (x, bias, dy)]  # 1032 columns: aligned rows
    odd = [forward_op(x, bias, "gelu"), *backward_op(dy, x, bias, "gelu")]
    even = [forward_op(padded[0], padded[1], "gelu"), *backward_op(padded[2], padded[0], padded[1], "gelu")]
    for name, o, e in zip(("y", "dx", "dbias"), odd, even):
        assert torch.equal(o, e[..., :1027]), f"{name} differs between the odd and the aligned width"


def test_non_contiguous_inputs():
    x_t, _, dy_t = cuda_inputs((96, 40), "float32", seed=11)
    x, dy = x_t.t(), dy_t.t()  # (40, 96), transposed views
    bias = cuda_inputs((192,), "float32", seed=12)[0][::2]  # strided view of 96 elements
    assert not x.is_contiguous() and not dy.is_contiguous() and not bias.is_contiguous()
    check_forward_and_backward(x, bias, dy, "gelu", "float32")


@pytest.mark.parametrize("shape", [(0, 16), (2, 0, 16), (4, 0), (0,)], ids=str)
@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_empty_input(shape, dtype_name):
    dtype = getattr(torch, dtype_name)
    x = torch.empty(shape, device="cuda", dtype=dtype)
    dy = torch.empty(shape, device="cuda", dtype=dtype)
    bias = torch.randn(shape[-1], device="cuda").to(dtype)
    y = forward_op(x, bias, "gelu")
    assert y.shape == x.shape and y.dtype == dtype and y.is_cuda
    # A NaN block freed at once: the allocator hands it out again, so an unwritten dbias reads NaN.
    torch.full((4096,), float("nan"), device="cuda", dtype=dtype)
    dx, dbias = backward_op(dy, x, bias, "gelu")
    assert dx.shape == x.shape and dbias.shape == bias.shape and dbias.dtype == dtype
    assert torch.equal(dbias, torch.zeros_like(bias)), "dbias of no rows must be zeros"


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float32"])
def test_dbias_is_bit_reproducible(dtype_name):
    x, bias, dy = cuda_inputs((8192, 1024), dtype_name, seed=3)
    first_dx, first_dbias = backward_op(dy, x, bias, "gelu")
    assert torch.isfinite(first_dbias).all() and first_dbias.abs().sum() > 0
    for _ in range(4):
        dx, dbias = backward_op(dy, x, bias, "gelu")
        assert torch.equal(dbias, first_dbias)
        assert torch.equal(dx, first_dx)


def test_inputs_left_unmodified():
    x, bias, dy = cuda_inputs((33, 520), "bfloat16", seed=5)
    before = [t.clone() for t in (x, bias, dy)]
    forward_op(x, bias, "silu")
    backward_op(dy, x, bias, "silu")
    tt.bias_act(x.requires_grad_(), bias, "silu").backward(dy)
    for original, now in zip(before, (x, bias, dy)):
        assert torch.equal(original, now.detach())


def past_2_to_the_31(vector_dtype):
    """bfloat16 x and dy of 4096 columns and 2^31 + 4096 elements (dy > 0 everywhere, so any row left
    out of a column sum moves it well outside the tolerance), a per-column vector of vector_dtype
    (bias, weight), and the rows to check: the last starts at element 2^31. Skips the test where
    the GPU has less than 24 GiB free."""
    cols = 4096
    rows = 2**31 // cols + 1
    free_bytes, _ = torch.cuda.mem_get_info()
    if free_bytes < 24 * 2**30:
        pytest.skip(f"needs 24 GiB of free GPU memory; {free_bytes / 2**30:.1f} GiB free")
    gen = torch.Generator(device="cuda").manual_seed(13)
    x = torch.randn((rows, cols), generator=gen, device="cuda", dtype=torch.bfloat16)
    vector = torch.randn(cols, generator=gen, device="cuda", dtype=vector_dtype)
    dy = torch.rand((rows, cols), generator=gen, device="cuda", dtype=torch.bfloat16) + 0.5
    assert x.numel() > 2**31
    return x, vector, dy, [0, 1, rows // 2, rows - 2, rows - 1]


def test_more_than_2_to_the_31_elements():
    """bfloat16 x of 2^31 + 4096 elements: rows past the 2^31st element are computed and summed,
    forward, backward and double backward."""
    x, bias, dy, sampled_rows = past_2_to_the_31(torch.bfloat16)
    rows, cols = x.shape
    try:
        y = forward_op(x, bias, "gelu")
        for r in sampled_rows:
            expected = reference.bias_act(to_numpy(x[r]), to_numpy(bias), "gelu")
            assert_close(to_numpy(y[r]), expected, "bfloat16", what=f"y row {r}")
        del y

        dx, dbias = backward_op(dy, x, bias, "gelu")
        for r in sampled_rows:
            expected, _ = reference.bias_act_backward(to_numpy(dy[r]), to_numpy(x[r]), to_numpy(bias), "gelu")
            assert_close(to_numpy(dx[r]), expected, "bfloat16", what=f"dx row {r}")
        del dx
        dbias_ref = torch.zeros(cols, device="cuda", dtype=torch.float64)
        for start in range(0, rows, 32768):  # PyTorch's own gelu_backward, in float64 chunks
            v = x[start:start + 32768].double() + bias.double()
            dbias_ref += torch.ops.aten.gelu_backward(dy[start:start + 32768].double(), v).sum(0)
            del v
        assert_close(to_numpy(dbias), to_numpy(dbias_ref), "bfloat16", summed=rows, what="dbias")

        # The double backward, with g = dy: d_dy = dy act'(v), d_x = dy^2 act''(v).
        g_bias = torch.zeros_like(bias)
        d_dy, d_x, d_bias = double_backward_op(dy, g_bias, dy, x, bias, "gelu")
        for r in sampled_rows:
            want = reference.bias_act_double_backward(to_numpy(dy[r]), to_numpy(dy[r]), to_numpy(x[r]), to_numpy(bias), "gelu")
            assert_close(to_numpy(d_dy[r]), want[0], "bfloat16", what=f"d_dy row {r}")
            assert_close(to_numpy(d_x[r]), want[1], "bfloat16", what=f"d_x row {r}")
        del d_dy, d_x
        d_bias_ref = torch.zeros(cols, device="cuda", dtype=torch.float64)
        for start in range(0, rows, 32768):  # gelu'' = pdf(v) (2 - v^2), in float64 chunks
            v = x[start:start + 32768].double() + bias.double()
            pdf = torch.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
            d_bias_ref += (dy[start:start + 32768].double().square() * pdf * (2 - v * v)).sum(0)
            del v, pdf
        assert_close(to_numpy(d_bias), to_numpy(d_bias_ref), "bfloat16", summed=rows, what="d_bias")

        # dbias of a slice of rows straddling element 2^31: only those rows have a nonzero dy.
        slice_rows = slice(rows - 3, rows)
        dy.zero_()
        dy[slice_rows] = torch.rand((3, cols), generator=gen, device="cuda", dtype=torch.bfloat16) + 0.5
        _, dbias = backward_op(dy, x, bias, "gelu")
        _, expected = reference.bias_act_backward(to_numpy(dy[slice_rows]), to_numpy(x[slice_rows]), to_numpy(bias), "gelu")
        assert_close(to_numpy(dbias), expected, "bfloat16", summed=3, what="dbias of the last rows")
    finally:
        del x, dy
        torch.cuda.empty_cache()


def test_runs_on_the_current_stream_only():
    """With the default stream held busy by a long kernel, both ops complete on a side stream."""
    x, bias, dy = cuda_inputs((256, 1024), "float32", seed=17)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):  # warm the allocator's blocks for this stream: no cudaMalloc later
        forward_op(x, bias, "gelu_tanh")
        backward_op(dy, x, bias, "gelu_tanh")
    torch.cuda.synchronize()
    torch.cuda._sleep(2_000_000_000)  # about a second of GPU time on the default stream
    with torch.cuda.stream(side):
        y = forward_op(x, bias, "gelu_tanh")
        dx, dbias = backward_op(dy, x, bias, "gelu_tanh")
        side.synchronize()
        assert not torch.cuda.default_stream().query(), "the op waited for the default stream"
        results = [t.cpu().numpy() for t in (y, dx, dbias)]  # float32 copies on the side stream
        assert not torch.cuda.default_stream().query(), "sleep too short to tell the streams apart"
    torch.cuda.synchronize()
    x_np, b_np, dy_np = to_numpy(x), to_numpy(bias), to_numpy(dy)
    assert_close(results[0], reference.bias_act(x_np, b_np, "gelu_tanh"), "float32", what="y")
    dx_ref, dbias_ref = reference.bias_act_backward(dy_np, x_np, b_np, "gelu_tanh")
    assert_close(results[1], dx_ref, "float32", what="dx")
    assert_close(results[2], dbias_ref, "float32", summed=256, what="dbias")


def test_cuda_graph_capture_and_replay():
    """Both ops capture into one CUDA graph; replays compute on the inputs' new values."""
    x, bias, dy = cuda_inputs((130, 776), "bfloat16", seed=19)
    warmup = torch.cuda.Stream()
    warmup.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(warmup):
        forward_op(x, bias, "silu")
        backward_op(dy, x, bias, "silu")
    torch.cuda.current_stream().wait_stream(warmup)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = forward_op(x, bias, "silu")
        dx, dbias = backward_op(dy, x, bias, "silu")
    for seed in range(3):
        for static, fresh in zip((x, bias, dy), cuda_inputs((130, 776), "bfloat16", seed)):
            static.copy_(fresh)
        graph.replay()
        x_np, b_np, dy_np = to_numpy(x), to_numpy(bias), to_numpy(dy)
        assert_close(to_numpy(y), reference.bias_act(x_np, b_np, "silu"), "bfloat16", what="y")
        dx_ref, dbias_ref = reference.bias_act_backward(dy_np, x_np, b_np, "silu")
        assert_close(to_numpy(dx), dx_ref, "bfloat16", what="dx")
        assert_close(to_numpy(dbias), dbias_ref, "bfloat16", summed=130, what="dbias")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradcheck_float64(act):
    x, bias, _ = cuda_inputs((5, 7), "float64", seed=23)
    if act == "relu":  # keep x + bias at least 0.2 away from the kink at 0
        v = x + bias
        x = x + 0.2 * torch.sign(v)
    x.requires_grad_()
    bias.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: tt.bias_act(a, b, act), (x, bias))


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_opcheck_forward(dtype_name, requires_grad):
    x, bias, _ = cuda_inputs((2, 3, 40), dtype_name, seed=29)
    x.requires_grad_(requires_grad)
    bias.requires_grad_(requires_grad)
    torch.library.opcheck(forward_op.default, (x, bias, "gelu"))


@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_opcheck_backward(dtype_name):
    x, bias, dy = cuda_inputs((2, 3, 40), dtype_name, seed=31)
    torch.library.opcheck(backward_op.default, (dy, x, bias, "gelu"))


def test_opcheck_double_backward():
    args = cuda_double_backward_inputs((2, 3, 40), "float32", seed=67)
    torch.library.opcheck(double_backward_op.default, (*args, "gelu"))


def test_compile_reduce_overhead_uses_cuda_graphs():
    """torch.compile(mode="reduce-overhead") captures the op into CUDA graphs (no skips) and
    its replays follow new input values, forward and backward."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()

    def scaled_gelu(x, bias):
        return tt.bias_act(x, bias, "gelu") * 2.0

    compiled = torch.compile(scaled_gelu, mode="reduce-overhead")
    for seed in range(5):
        x, bias, dy = cuda_inputs((64, 256), "float32", seed=100 + seed)
        x_np, b_np, dy_np = to_numpy(x), to_numpy(bias), to_numpy(dy)
        torch.compiler.cudagraph_mark_step_begin()
        with torch.no_grad():
            y = compiled(x, bias)
        assert_close(to_numpy(y), 2.0 * reference.bias_act(x_np, b_np, "gelu"), "float32", what="y")

        x.requires_grad_()
        bias.requires_grad_()
        torch.compiler.cudagraph_mark_step_begin()
        compiled(x, bias).backward(dy)
        dx_ref, dbias_ref = reference.bias_act_backward(2.0 * dy_np, x_np, b_np, "gelu")
        assert_close(to_numpy(x.grad), dx_ref, "float32", what="dx")
        assert_close(to_numpy(bias.grad), dbias_ref, "float32", summed=64, what="dbias")
    assert counters["inductor"]["cudagraph_skips"] == 0, "reduce-overhead fell back to no CUDA graphs"


# The double backward (the gradient of the backward, as in a gradient penalty).

def cuda_double_backward_inputs(shape, dtype_name, seed=0):
    """(g, g_bias, dy, x, bias) on the GPU, in the raw op's argument order."""
    x, bias, dy, g, g_bias = make_double_backward_inputs(shape, dtype_name, seed)
    return tuple(torch.tensor(a, dtype=getattr(torch, dtype_name), device="cuda") for a in (g, g_bias, dy, x, bias))


def check_double_backward(g, g_bias, dy, x, bias, act, dtype_name):
    """Runs the double backward and compares d_dy, d_x and d_bias with the float64 reference."""
    d_dy, d_x, d_bias = double_backward_op(g, g_bias, dy, x, bias, act)
    want = reference.bias_act_double_backward(to_numpy(g), to_numpy(dy), to_numpy(x), to_numpy(bias), act,
                                              g_bias=to_numpy(g_bias))
    assert_close(to_numpy(d_dy), want[0], dtype_name, what="d_dy")
    assert_close(to_numpy(d_x), want[1], dtype_name, what="d_x")
    assert_close(to_numpy(d_bias), want[2], dtype_name, summed=rows_of(x.shape), what="d_bias")
    for result, like in ((d_dy, x), (d_x, x), (d_bias, bias)):
        assert result.device == x.device and result.dtype == x.dtype and result.shape == like.shape
    return d_dy, d_x, d_bias


@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=str)
@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_double_backward_matches_reference(shape, dtype_name, act):
    check_double_backward(*cuda_double_backward_inputs(shape, dtype_name), act, dtype_name)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_double_backward_nan_and_inf_propagate_as_the_reference(act):
    special = torch.tensor(SPECIAL_X, dtype=torch.float32, device="cuda")
    ones, zeros = torch.ones_like(special), torch.zeros(special.shape[-1], device="cuda")
    for g, dy in ((ones, ones), (ones, special), (special, ones)):
        check_double_backward(g, zeros, dy, special, zeros, act, "float32")


@pytest.mark.parametrize("misaligned", ["g", "g_bias", "dy", "x", "bias", "g,dy,x"])
@pytest.mark.parametrize("dtype_name", ["bfloat16", "float32", "float64"])
def test_double_backward_misaligned_pointers_give_identical_results(misaligned, dtype_name):
    names = ("g", "g_bias", "dy", "x", "bias")
    aligned = dict(zip(names, cuda_double_backward_inputs((48, 1024), dtype_name, seed=43)))
    shifted = dict(aligned, **{name: misaligned_copy(aligned[name]) for name in misaligned.split(",")})
    want = check_double_backward(*(aligned[n] for n in names), "gelu", dtype_name)
    got = check_double_backward(*(shifted[n] for n in names), "gelu", dtype_name)
    for name, w, g in zip(("d_dy", "d_x", "d_bias"), want, got):
        assert torch.equal(w, g), f"{name} differs between the aligned and the misaligned launch"


@pytest.mark.parametrize("shape", [(0, 16), (2, 0, 16), (4, 0)], ids=str)
def test_double_backward_empty_input(shape):
    g, dy, x = (torch.empty(shape, device="cuda") for _ in range(3))
    g_bias, bias = (torch.randn(shape[-1], device="cuda") for _ in range(2))
    torch.full((4096,), float("nan"), device="cuda")  # freed at once: an unwritten d_bias would read NaN
    d_dy, d_x, d_bias = double_backward_op(g, g_bias, dy, x, bias, "silu")
    assert d_dy.shape == d_x.shape == shape and d_bias.shape == bias.shape
    assert torch.equal(d_bias, torch.zeros_like(bias)), "d_bias of no rows must be zeros"


def test_double_backward_is_bit_reproducible():
    args = cuda_double_backward_inputs((8192, 1024), "bfloat16", seed=47)
    first = double_backward_op(*args, "gelu_tanh")
    assert torch.isfinite(first[2]).all() and first[2].abs().sum() > 0
    for _ in range(4):
        for name, want, got in zip(("d_dy", "d_x", "d_bias"), first, double_backward_op(*args, "gelu_tanh")):
            assert torch.equal(want, got), name


def test_double_backward_cuda_graph_capture_and_replay():
    args = cuda_double_backward_inputs((130, 776), "bfloat16", seed=53)
    warmup = torch.cuda.Stream()
    warmup.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(warmup):
        double_backward_op(*args, "silu")
    torch.cuda.current_stream().wait_stream(warmup)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        results = double_backward_op(*args, "silu")
    for seed in range(3):
        for static, fresh in zip(args, cuda_double_backward_inputs((130, 776), "bfloat16", seed)):
            static.copy_(fresh)
        graph.replay()
        want = reference.bias_act_double_backward(to_numpy(args[0]), to_numpy(args[2]), to_numpy(args[3]),
                                                  to_numpy(args[4]), "silu", g_bias=to_numpy(args[1]))
        for name, got, expected, summed in zip(("d_dy", "d_x", "d_bias"), results, want, (1, 1, 130)):
            assert_close(to_numpy(got), expected, "bfloat16", summed=summed, what=name)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradgradcheck_float64(act):
    x, bias, _ = cuda_inputs((5, 7), "float64", seed=59)
    if act == "relu":  # keep x + bias at least 0.2 away from the kink at 0
        x = x + 0.2 * torch.sign(x + bias)
    x.requires_grad_()
    bias.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda a, b: tt.bias_act(a, b, act), (x, bias))
    assert torch.autograd.gradgradcheck(lambda a, b: forward_op(a, b, act), (x, bias))


NATIVE = {
    "gelu": torch.nn.functional.gelu,
    "gelu_tanh": lambda v: torch.nn.functional.gelu(v, approximate="tanh"),
    "silu": torch.nn.functional.silu,
    "relu": torch.nn.functional.relu,
}


@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradient_penalty_step_matches_pytorch(act, dtype_name):
    """The gradient of a gradient penalty, ||d sum(y) / dx||^2, on CUDA tensors through
    twinop.torch.bias_act, against PyTorch's own activation in float64 on the same values."""

    def penalty_gradients(fn, x, bias):
        x, bias = x.detach().requires_grad_(), bias.detach().requires_grad_()
        (dx,) = torch.autograd.grad(fn(x, bias).sum(), x, create_graph=True)
        return torch.autograd.grad(dx.square().sum(), (x, bias))

    x, bias, _ = cuda_inputs((64, 96), dtype_name, seed=61)
    got = penalty_gradients(lambda a, b: tt.bias_act(a, b, act), x, bias)
    want = penalty_gradients(lambda a, b: NATIVE[act](a + b), x.double(), bias.double())
    assert got[0].dtype == x.dtype and got[1].dtype == bias.dtype
    assert_close(to_numpy(got[0]), to_numpy(want[0]), dtype_name, what="d penalty / dx")
    assert_close(to_numpy(got[1]), to_numpy(want[1]), dtype_name, summed=64, what="d penalty / dbias")


needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")


@needs_two_gpus
def test_device_mismatch_is_an_error():
    x, bias, dy = cuda_inputs((4, 64), "float32", seed=37)
    for args, op in [((x, bias.to("cuda:1"), "gelu"), forward_op),
                     ((dy.to("cuda:1"), x, bias, "gelu"), backward_op)]:
        with pytest.raises((RuntimeError, ValueError)) as error:
            op(*args)
        message = str(error.value)
        assert "device" in message.lower() and "illegal memory access" not in message


@needs_two_gpus
def test_runs_on_a_device_that_is_not_current():
    with torch.cuda.device(0):
        x, bias, dy = (t.to("cuda:1") for t in cuda_inputs((16, 520), "float32", seed=41))
        y, dx, dbias = check_forward_and_backward(x, bias, dy, "silu", "float32")
    assert y.device == dx.device == dbias.device == torch.device("cuda:1")
