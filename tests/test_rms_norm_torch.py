"""twinop.torch.rms_norm and add_rms_norm in PyTorch's machinery, against F.rms_norm and the
composition x * rsqrt(mean(x^2) + eps) * (w + offset) in float64: every transform of the autodiff
table (double backward and gradient penalty, forward mode, torch.func, vmap, third order),
torch.compile, torch.export, opcheck, autocast, and the RMSNorm module against nn.RMSNorm."""
import pytest

torch = pytest.importorskip("torch")
tt = pytest.importorskip("twinop.torch", exc_type=ImportError)

import torch.nn.functional as F  # noqa: E402
from torch._dynamo.utils import counters  # noqa: E402
from torch.autograd import forward_ad  # noqa: E402
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vmap  # noqa: E402

from test_torch_autodiff import KernelCalls, assert_same, no_fallbacks  # noqa: E402, F401  (no_fallbacks: autouse)

EPS, OFFSET = 1e-5, 0.5


def composition(x, w, eps=EPS, offset=OFFSET):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (w + offset)


def ours(x, w, eps=EPS, offset=OFFSET):
    return tt.rms_norm(x, w, eps, offset=offset)


def raw(x, w, eps=EPS, offset=OFFSET):
    return torch.ops.twinop.rms_norm(x, w, eps, offset)[0]


def native(x, w, eps=EPS, offset=OFFSET):  # PyTorch's own op (offset folded into the weight)
    return F.rms_norm(x, (x.shape[-1],), w + offset, eps)


def add_ours(x, r, w):
    return tt.add_rms_norm(x, r, w, EPS, offset=OFFSET)


def add_composition(x, r, w):
    s = x + r
    return composition(s, w), s


def inputs(shape=(4, 7), seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, dtype=torch.float64, generator=gen) * torch.linspace(0.5, 2.0, shape[-1], dtype=torch.float64)
    w = torch.randn(shape[-1], dtype=torch.float64, generator=gen)
    return x, w


def test_forward_and_gradients_match_pytorchs_rms_norm():
    x, w = inputs(seed=1)
    dy = torch.randn_like(x)
    for fn in (ours, raw):
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        xn, wn = x.clone().requires_grad_(), w.clone().requires_grad_()
        y, want = fn(xr, wr), native(xn, wn)
        assert_same(y, want)
        assert_same(torch.autograd.grad(y, (xr, wr), dy), torch.autograd.grad(want, (xn, wn), dy))


@pytest.mark.parametrize("fn", [ours, raw], ids=["rms_norm", "raw op"])
def test_gradcheck_and_gradgradcheck(fn):
    x, w = inputs(seed=2)
    args = (x.requires_grad_(), w.requires_grad_())
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)
    assert torch.autograd.gradcheck(lambda a, r, b: add_ours(a, r, b), (x, torch.randn_like(x).requires_grad_(), w))
    assert torch.autograd.gradgradcheck(lambda a, r, b: add_ours(a, r, b), (x, torch.randn_like(x).requires_grad_(), w))


def test_gradcheck_in_forward_and_batched_modes():
    x, w = inputs(seed=3)
    assert torch.autograd.gradcheck(ours, (x.requires_grad_(), w.requires_grad_()), check_forward_ad=True,
                                    check_batched_grad=True, check_batched_forward_grad=True)


@pytest.mark.parametrize("call", ["rms_norm", "module", "raw op", "add_rms_norm"])
def test_gradient_penalty_step(call):
    """The loss holds a gradient's norm: the step differentiates the backward."""
    x0, w0 = inputs(seed=4)
    r = torch.randn_like(x0)

    def step(fn):
        x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
        y = fn(x, w)
        (g,) = torch.autograd.grad(y.sin().sum(), x, create_graph=True)
        (y.sum() + (g ** 2).sum()).backward()
        return x.grad, w.grad

    if call == "module":
        module = tt.RMSNorm(x0.shape[-1], EPS, offset=OFFSET, dtype=torch.float64)
        fn = lambda a, b: torch.func.functional_call(module, {"weight": b}, (a,))  # noqa: E731
    elif call == "add_rms_norm":
        fn = lambda a, b: add_ours(a, r, b)[0] + add_ours(a, r, b)[1]  # noqa: E731
        assert_same(step(fn), step(lambda a, b: add_composition(a, r, b)[0] + a + r))
        return
    else:
        fn = ours if call == "rms_norm" else raw
    assert_same(step(fn), step(composition))


def test_a_penalty_on_dx_alone():
    """Second order where the weight's gradient is not used: a gradient arrives at dx only."""
    x, w = inputs(seed=5)

    def penalty(fn):
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        (dx,) = torch.autograd.grad(fn(xr, wr).sum(), xr, create_graph=True)
        dx.pow(2).sum().backward()
        return xr.grad, wr.grad

    assert_same(penalty(ours), penalty(composition))
    assert_same(penalty(raw), penalty(composition))


def test_forward_mode_jvp_jacfwd_and_dual_tensors():
    x, w = inputs(seed=6)
    t_x, t_w = inputs(seed=7)
    assert_same(jvp(ours, (x, w), (t_x, t_w)), jvp(composition, (x, w), (t_x, t_w)))
    assert_same(jacfwd(ours, argnums=(0, 1))(x, w), jacfwd(composition, argnums=(0, 1))(x, w))
    r, t_r = torch.randn_like(x), torch.randn_like(x)
    assert_same(jvp(add_ours, (x, r, w), (t_x, t_r, t_w)), jvp(add_composition, (x, r, w), (t_x, t_r, t_w)))
    tangents = []
    for fn in (ours, composition):
        with forward_ad.dual_level():
            y = fn(forward_ad.make_dual(x, t_x), forward_ad.make_dual(w, t_w))
            tangents.append(forward_ad.unpack_dual(y).tangent)
    assert_same(tangents[0], tangents[1])


@pytest.mark.parametrize("transform", [grad, jacrev, hessian], ids=lambda t: t.__name__)
def test_torch_func_transforms(transform):
    x, w = inputs(seed=8)

    def loss(fn):
        return lambda a, b: fn(a, b).sin().sum()

    assert_same(transform(loss(ours), argnums=(0, 1))(x, w), transform(loss(composition), argnums=(0, 1))(x, w))


def test_second_order_in_every_mode_combination():
    x, w = inputs(seed=9)
    for outer in (jacfwd, jacrev):
        for inner in (jacfwd, jacrev):
            assert_same(outer(inner(lambda a, b: ours(a, b).sin().sum(), argnums=(0, 1)), argnums=(0, 1))(x, w),
                        outer(inner(lambda a, b: composition(a, b).sin().sum(), argnums=(0, 1)), argnums=(0, 1))(x, w))
    r = torch.randn_like(x)
    assert_same(jacfwd(jacrev(lambda a: add_ours(a, r, w)[0].sin().sum()))(x),
                jacfwd(jacrev(lambda a: add_composition(a, r, w)[0].sin().sum()))(x))


def test_third_order_through_the_raw_op_and_a_clear_error_through_the_functions():
    """The raw op's backward op has its derivative as torch ops, which torch.autograd differentiates
    again: third order is exact. torch.func does not differentiate a Function's rules again, so
    through twinop.torch.rms_norm a third order raises instead of being silently wrong."""
    x, w = inputs((2, 5), seed=10)

    def third(fn):
        a = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(fn(a, w).sin().sum(), a, create_graph=True)
        (h,) = torch.autograd.grad(g.pow(2).sum(), a, create_graph=True)
        return torch.autograd.grad(h.sum(), a)

    assert_same(third(raw), third(composition))
    for call in (lambda: third(ours), lambda: jacrev(jacrev(jacrev(lambda a: ours(a, w).sin().sum())))(x),
                 lambda: jacfwd(jacfwd(jacfwd(lambda a: ours(a, w).sin().sum())))(x)):
        with pytest.raises(NotImplementedError, match="third-order"):
            call()


VMAP_CASES = {  # in_dims for (x, weight) and shapes, the batch of 3 where it is
    "batched x": ((0, None), (3, 4, 7), (7,)),
    "batched x, batch last": ((2, None), (4, 7, 3), (7,)),
    "batched weight": ((None, 0), (4, 7), (3, 7)),
    "both batched": ((1, 0), (4, 3, 7), (3, 7)),
}


@pytest.mark.parametrize("case", VMAP_CASES)
def test_vmap_forward_and_per_example_gradients(case):
    in_dims, x_shape, w_shape = VMAP_CASES[case]
    gen = torch.Generator().manual_seed(10)
    x, w = (torch.randn(shape, dtype=torch.float64, generator=gen) for shape in (x_shape, w_shape))
    assert_same(vmap(ours, in_dims=in_dims)(x, w), vmap(composition, in_dims=in_dims)(x, w))

    def per_example_grads(fn):
        return vmap(grad(lambda a, b: fn(a, b).pow(2).sum(), argnums=(0, 1)), in_dims=in_dims)(x, w)

    assert_same(per_example_grads(ours), per_example_grads(composition))
    r = torch.randn_like(x)
    assert_same(vmap(add_ours, in_dims=(in_dims[0], in_dims[0], in_dims[1]))(x, r, w),
                vmap(add_composition, in_dims=(in_dims[0], in_dims[0], in_dims[1]))(x, r, w))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_vmap_gives_the_unbatched_results_bit_for_bit(dtype):
    """The batching rules compute what the kernel computes per example, batched weights too."""
    dtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(11)
    x, w = torch.randn(3, 5, 6, generator=gen).to(dtype), torch.randn(3, 6, generator=gen).to(dtype)
    batched = vmap(ours)(x, w)
    dx = vmap(grad(lambda a, b: ours(a, b).float().sum()))(x, w)
    for i in range(3):
        assert torch.equal(batched[i], ours(x[i], w[i]))
        xi = x[i].clone().requires_grad_()
        ours(xi, w[i]).float().sum().backward()
        assert torch.equal(dx[i], xi.grad)


def test_vmap_runs_the_kernels_once_for_the_whole_batch():
    x, w = torch.randn(5, 4, 6), torch.randn(6)
    with KernelCalls() as mode:
        vmap(ours, in_dims=(0, None))(x, w)
        vmap(grad(lambda a: ours(a, w).sum()))(x)
    computing = [call for call in mode.calls if 0 not in call[1]]
    assert computing == [("rms_norm.default", (5, 4, 6)), ("rms_norm.default", (5, 4, 6)),
                         ("rms_norm_backward.default", (5, 4, 6))]


def test_the_backward_ops_derivatives():
    """The backward ops' own autograd (backward_vjp), rstd an input of its own."""
    x, w = inputs((3, 6), seed=12)
    _, rstd = torch.ops.twinop.rms_norm(x, w, EPS, OFFSET)
    dy, ds = torch.randn_like(x), torch.randn_like(x)
    args = [t.clone().requires_grad_() for t in (dy, x, rstd, w)]
    assert torch.autograd.gradcheck(lambda *a: torch.ops.twinop.rms_norm_backward(*a, OFFSET), args)
    assert torch.autograd.gradgradcheck(lambda *a: torch.ops.twinop.rms_norm_backward(*a, OFFSET), args)
    args = [t.clone().requires_grad_() for t in (dy, ds, x, rstd, w)]
    assert torch.autograd.gradcheck(lambda *a: torch.ops.twinop.add_rms_norm_backward(*a, OFFSET), args)


def test_raw_op_refuses_forward_mode_instead_of_dropping_the_tangent():
    x, w = inputs(seed=13)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(x, torch.ones_like(x))
        with pytest.raises(RuntimeError, match="forward-mode tangent.*twinop.torch.rms_norm"):
            torch.ops.twinop.rms_norm(dual, w, EPS, OFFSET)
        assert forward_ad.unpack_dual(ours(dual, w)).tangent is not None


def test_opcheck():
    x, w = (t.float() for t in inputs((3, 5, 7), seed=14))
    args = (x.requires_grad_(), w.requires_grad_(), EPS, OFFSET)
    torch.library.opcheck(torch.ops.twinop.rms_norm.default, args)
    torch.library.opcheck(torch.ops.twinop.add_rms_norm.default, (x, torch.randn_like(x).requires_grad_(), w, EPS,
                                                                  OFFSET))
    _, rstd = torch.ops.twinop.rms_norm(x.detach(), w.detach(), EPS, OFFSET)
    dy = torch.randn_like(x)
    torch.library.opcheck(torch.ops.twinop.rms_norm_backward.default, (dy, x.detach(), rstd, w.detach(), OFFSET))
    torch.library.opcheck(torch.ops.twinop.add_rms_norm_backward.default,
                          (dy, dy, x.detach(), rstd, w.detach(), OFFSET))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_forward_and_backward(backend):
    torch._dynamo.reset()
    counters.clear()
    x0, w0 = (t.float() for t in inputs((6, 16), seed=15))
    r = torch.randn_like(x0)

    def fn(x, w):  # the ops between native ops: one graph, no break
        y, s = tt.add_rms_norm(x * 2, r, w, EPS, offset=OFFSET)
        return (tt.rms_norm(y, w, EPS) + s).sum(-1)

    def run(f):
        x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
        y = f(x, w)
        return (y, *torch.autograd.grad(y.sum(), (x, w)))

    got, want = run(torch.compile(fn, fullgraph=True, backend=backend)), run(fn)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]


def test_export_forward_and_backward():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), tt.RMSNorm(8, EPS))
    batch = torch.export.Dim("batch")
    exported = torch.export.export(model, (torch.randn(4, 8),), dynamic_shapes=({0: batch},))
    targets = [node.target for node in exported.graph.nodes if node.op == "call_function"]
    assert torch.ops.twinop.rms_norm.default in targets  # one op, not decomposed
    x = torch.randn(5, 8)
    torch.testing.assert_close(exported.module()(x), model(x))
    joint = exported.run_decompositions()  # the backward of the exported program through the op's autograd
    module = joint.module()
    y = module(x.requires_grad_())
    (gx,) = torch.autograd.grad(y.sum(), x)
    x2 = x.detach().requires_grad_()
    (want,) = torch.autograd.grad(model(x2).sum(), x2)
    torch.testing.assert_close(gx, want)


def test_cpu_autocast_leaves_the_op_alone_as_it_does_f_rms_norm():
    """On the CPU autocast has no policy for rms_norm: float32 stays float32, and a bfloat16 x
    with a float32 weight runs mixed and returns bfloat16, as F.rms_norm does."""
    x, w = (t.float() for t in inputs(seed=16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ours(x, w).dtype == native(x, w).dtype == torch.float32
        got, want = ours(x.bfloat16(), w, offset=0.0), F.rms_norm(x.bfloat16(), (7,), w, EPS)
    assert got.dtype == want.dtype == torch.bfloat16
    torch.testing.assert_close(got, want, rtol=1.6e-2, atol=1.6e-2)


def test_module_state_dict_loads_from_and_into_nn_rms_norm():
    ours_module = tt.RMSNorm(7, eps=EPS, dtype=torch.float64)
    theirs = torch.nn.RMSNorm(7, eps=EPS, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.linspace(0.5, 1.5, 7))
    ours_module.load_state_dict(theirs.state_dict())
    x, _ = inputs(seed=17)
    assert_same(ours_module(x), theirs(x))
    theirs.load_state_dict(tt.RMSNorm(7, eps=EPS, dtype=torch.float64).state_dict())
    assert torch.equal(theirs.weight, torch.ones(7, dtype=torch.float64))
    assert "offset=0.0" in repr(ours_module) and torch.equal(tt.RMSNorm(3).weight, torch.ones(3))
    with pytest.raises(ValueError, match="normalizes the last axis"):
        tt.RMSNorm((3, 4))


def test_module_trains_as_nn_rms_norm():
    torch.manual_seed(18)
    x, target = torch.randn(16, 8, dtype=torch.float64), torch.randn(16, 8, dtype=torch.float64)

    def train(norm):
        model = torch.nn.Sequential(torch.nn.Linear(8, 8, dtype=torch.float64), norm)
        torch.nn.init.eye_(model[0].weight), torch.nn.init.zeros_(model[0].bias)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), target).backward()
            opt.step()
        return [p.detach() for p in model.parameters()]

    assert_same(train(tt.RMSNorm(8, EPS, dtype=torch.float64)), train(torch.nn.RMSNorm(8, EPS, dtype=torch.float64)))
