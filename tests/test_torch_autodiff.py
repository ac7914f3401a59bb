"""PyTorch autodiff beyond one backward pass, against the native composition act(x + b) in
float64: double backward (gradient penalty, gradgradcheck), forward mode, torch.func
transforms, vmap with batched x and bias, and the errors where a transform is not supported."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tt = pytest.importorskip("twinop.torch", exc_type=ImportError)

import torch.nn.functional as F  # noqa: E402
from torch.autograd import forward_ad  # noqa: E402
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vmap  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from cases import ACTIVATIONS, make_inputs  # noqa: E402
from tolerances import NATIVE_FLOAT64  # noqa: E402

NATIVE = {
    "gelu": F.gelu,
    "gelu_tanh": lambda v: F.gelu(v, approximate="tanh"),
    "silu": F.silu,
    "relu": F.relu,
}
RTOL, ATOL = NATIVE_FLOAT64["torch"]


def inputs(shape=(4, 7), seed=0):
    """float64 (x, bias, dy) with x + bias kept 0.1 away from relu's kink."""
    x, bias, dy = make_inputs(shape, "float64", seed)
    v = x + bias
    x = np.where(np.abs(v) < 0.1, x + 0.3, x)
    return tuple(torch.tensor(a) for a in (x, bias, dy))


def ours(act):
    return lambda x, bias: tt.bias_act(x, bias, act)


def native(act):
    return lambda x, bias: NATIVE[act](x + bias)


def assert_same(got, want):
    """Nested tuples of tensors equal to float64 precision."""
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    else:
        torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)


@pytest.fixture(autouse=True)
def no_fallbacks():
    """Every test here fails where PyTorch would fall back: an op without an autograd kernel
    (a warning, made an error) or without a batching rule (the per-example loop, disabled; its
    warning goes to stderr, not to Python's warnings)."""
    torch._C._functorch._set_vmap_fallback_enabled(False)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*autograd kernel was not registered.*")
            yield
    finally:
        torch._C._functorch._set_vmap_fallback_enabled(True)


def test_the_vmap_check_catches_an_op_without_a_batching_rule():
    lib = torch.library.Library("twinop_test", "DEF")
    lib.define("double(Tensor x) -> Tensor")
    lib.impl("double", lambda x: x * 2, "CPU")
    with pytest.raises(RuntimeError, match="vmap fallback"):
        vmap(torch.ops.twinop_test.double)(torch.ones(3, 4))


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("call", ["bias_act", "module", "raw op"])
def test_gradient_penalty_step(act, call):
    """WGAN-GP style: the loss holds the gradient's norm, so the step needs the double backward."""
    x, bias, _ = inputs(seed=1)
    w0 = torch.linspace(0.5, 1.5, x.shape[-1], dtype=torch.float64)

    def step(fn):
        w, b = w0.clone().requires_grad_(), bias.clone().requires_grad_()
        xr = x.clone().requires_grad_()
        y = fn(xr * w, b)
        (g,) = torch.autograd.grad(y.sum(), xr, create_graph=True)
        (y.sum() + (g**2).sum()).backward()
        return w.grad, b.grad

    if call == "module":
        module = tt.BiasAct(x.shape[-1], act, dtype=torch.float64)
        fn = lambda v, b: torch.func.functional_call(module, {"bias": b}, (v,))  # noqa: E731
    elif call == "raw op":
        fn = lambda v, b: torch.ops.twinop.bias_act(v, b, act)  # noqa: E731
    else:
        fn = ours(act)
    assert_same(step(fn), step(native(act)))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradgradcheck(act):
    x, bias, _ = inputs(seed=2)
    assert torch.autograd.gradgradcheck(ours(act), (x.requires_grad_(), bias.requires_grad_()))
    assert torch.autograd.gradgradcheck(lambda a, b: torch.ops.twinop.bias_act(a, b, act), (x, bias))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_mode_jvp_and_jacfwd(act):
    x, bias, _ = inputs(seed=3)
    t_x, t_bias, _ = inputs(seed=4)
    assert_same(jvp(ours(act), (x, bias), (t_x, t_bias)), jvp(native(act), (x, bias), (t_x, t_bias)))
    assert_same(jvp(lambda a: ours(act)(a, bias), (x,), (t_x,)), jvp(lambda a: native(act)(a, bias), (x,), (t_x,)))
    assert_same(jacfwd(ours(act), argnums=(0, 1))(x, bias), jacfwd(native(act), argnums=(0, 1))(x, bias))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_ad_dual_tensors(act):
    x, bias, _ = inputs(seed=5)
    t_x, t_bias, _ = inputs(seed=6)
    tangents = []
    for fn in (ours(act), native(act)):
        with forward_ad.dual_level():
            y = fn(forward_ad.make_dual(x, t_x), forward_ad.make_dual(bias, t_bias))
            tangents.append(forward_ad.unpack_dual(y).tangent)
    assert tangents[0] is not None
    assert_same(tangents[0], tangents[1])


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_torch_func_grad_jacrev_hessian(act):
    x, bias, _ = inputs(seed=7)

    def loss(fn):
        return lambda a, b: fn(a, b).sin().sum()

    for transform in (grad, jacrev, hessian):
        assert_same(transform(loss(ours(act)), argnums=(0, 1))(x, bias),
                    transform(loss(native(act)), argnums=(0, 1))(x, bias))
    assert_same(jacrev(ours(act), argnums=(0, 1))(x, bias), jacrev(native(act), argnums=(0, 1))(x, bias))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_second_order_in_every_mode_combination(act):
    x, bias, _ = inputs(seed=8)
    for outer in (jacfwd, jacrev):
        for inner in (jacfwd, jacrev):
            assert_same(outer(inner(lambda a: ours(act)(a, bias).sin().sum()))(x),
                        outer(inner(lambda a: native(act)(a, bias).sin().sum()))(x))


VMAP_CASES = {  # in_dims for (x, bias), and the inputs' shapes with the batch of 3 where it is
    "batched x": ((0, None), (3, 4, 7), (7,)),
    "batched x, batch last": ((2, None), (4, 7, 3), (7,)),
    "batched bias": ((None, 0), (4, 7), (3, 7)),
    "both batched": ((1, 0), (4, 3, 7), (3, 7)),
}


@pytest.mark.parametrize("case", VMAP_CASES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_vmap_forward_and_backward(act, case):
    in_dims, x_shape, bias_shape = VMAP_CASES[case]
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(x_shape, dtype=torch.float64, generator=gen)
    bias = torch.randn(bias_shape, dtype=torch.float64, generator=gen)
    assert_same(vmap(ours(act), in_dims=in_dims)(x, bias), vmap(native(act), in_dims=in_dims)(x, bias))

    def per_example_grads(fn):
        return vmap(grad(lambda a, b: fn(a, b).pow(2).sum(), argnums=(0, 1)), in_dims=in_dims)(x, bias)

    assert_same(per_example_grads(ours(act)), per_example_grads(native(act)))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_vmap_gives_the_unbatched_results_bit_for_bit(dtype):
    """The batching rule computes what the kernel computes per example, in any dtype: a batched
    bias and dbias per example as more columns, in the dtype given."""
    dtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(10)
    x, bias = torch.randn(3, 5, 6, generator=gen).to(dtype), torch.randn(3, 6, generator=gen).to(dtype)
    batched = vmap(ours("gelu"))(x, bias)
    per_example_grads = vmap(grad(lambda a, b: ours("gelu")(a, b).float().sum(), argnums=(0, 1)))(x, bias)
    for i in range(3):
        assert torch.equal(batched[i], tt.bias_act(x[i], bias[i], "gelu"))
        xi, bi = x[i].clone().requires_grad_(), bias[i].clone().requires_grad_()
        tt.bias_act(xi, bi, "gelu").float().sum().backward()
        assert torch.equal(per_example_grads[0][i], xi.grad)
        torch.testing.assert_close(per_example_grads[1][i].float(), bi.grad.float(), rtol=1e-2, atol=1e-2)


class KernelCalls(TorchDispatchMode):
    """Records the shapes of each twinop op call that reaches the kernels (below vmap)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "twinop":
            self.calls.append((func.__name__, tuple(args[0].shape)))
        return func(*args, **(kwargs or {}))


def test_vmap_calls_each_kernel_once_for_the_whole_batch():
    """No per-example loop: a vmapped forward and per-example gradient call each op once (and
    check one example's arguments on an empty stand-in, which computes nothing)."""
    x, bias = torch.randn(5, 4, 6), torch.randn(6)
    with KernelCalls() as mode:
        vmap(ours("silu"), in_dims=(0, None))(x, bias)
        vmap(grad(lambda a: ours("silu")(a, bias).sum()))(x)
    computing = [call for call in mode.calls if 0 not in call[1]]
    # The gradient wants dbias per example: its batch is 5 more columns per column, not more rows.
    assert computing == [("bias_act.default", (5, 4, 6)), ("bias_act.default", (5, 4, 6)),
                         ("bias_act_backward.default", (4, 6 * 5))]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_double_backward_op_under_vmap(act):
    """The batching rule of the double backward: jacrev of a gradient (rows of a Hessian at once)."""
    x, bias, _ = inputs(seed=11)

    def hessian_by_jacrev(fn):
        return jacrev(grad(lambda a, b: fn(a, b).sin().sum(), argnums=(0, 1)), argnums=(0, 1))(x, bias)

    assert_same(hessian_by_jacrev(ours(act)), hessian_by_jacrev(native(act)))


def third_order_calls(act):
    x, bias, _ = inputs(seed=12)
    f = lambda a: ours(act)(a, bias).sin().sum()  # noqa: E731

    def nested_backward():
        a = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(f(a), a, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), a, create_graph=True)
        torch.autograd.grad(h.sum(), a)

    return {
        "autograd.grad x3": nested_backward,
        "jacrev(jacrev(jacrev))": lambda: jacrev(jacrev(jacrev(f)))(x),
        "jacfwd(jacfwd(jacfwd))": lambda: jacfwd(jacfwd(jacfwd(f)))(x),
        "jacfwd(hessian)": lambda: jacfwd(hessian(f))(x),
    }


@pytest.mark.parametrize("transform", list(third_order_calls("gelu")))
def test_third_order_is_a_clear_error(transform):
    with pytest.raises(NotImplementedError, match="third-order derivatives are not supported"):
        third_order_calls("gelu")[transform]()


def test_raw_op_refuses_forward_mode_instead_of_dropping_the_tangent():
    """torch.library gives an op's autograd no jvp: the raw op would return no tangent at all.
    The op raises instead (eager forward AD), and twinop.torch.bias_act has the jvp."""
    x, bias, dy = inputs(seed=13)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(x, torch.ones_like(x))
        for call in (lambda: torch.ops.twinop.bias_act(dual, bias, "gelu"),
                     lambda: torch.ops.twinop.bias_act_backward(dy, dual, bias, "gelu"),
                     lambda: torch.ops.twinop.bias_act_double_backward(dy, bias, dy, dual, bias, "gelu")):
            with pytest.raises(RuntimeError, match="forward-mode tangent.*twinop.torch.bias_act"):
                call()
        assert forward_ad.unpack_dual(tt.bias_act(dual, bias, "gelu")).tangent is not None


@pytest.mark.xfail(strict=True, reason="upstream pytorch#192985: under torch.compile, Dynamo drops custom "
                                       "forward-mode rules (and a custom op's autograd has none)")
def test_jvp_inside_torch_compile():
    """Known upstream limitation, pinned: it fails today; when PyTorch fixes it, this test
    passes, strict xfail turns that into a failure, and the README's limits must be updated."""
    torch._dynamo.reset()
    x, bias, _ = inputs(seed=14)
    t_x, _, _ = inputs(seed=15)
    run = lambda fn: jvp(lambda a: fn(a, bias), (x,), (t_x,))[1]  # noqa: E731
    assert_same(torch.compile(lambda: run(ours("gelu")))(), run(native("gelu")))


def test_raw_op_under_torch_func_grad_is_pytorchs_error():
    x, bias, _ = inputs(seed=16)
    with pytest.raises(RuntimeError, match="setup_context"):
        grad(lambda a: torch.ops.twinop.bias_act(a, bias, "gelu").sum())(x)


@pytest.mark.xfail(strict=True, reason="PyTorch: torch.library.register_autograd has no jvp, and torch.func.jvp "
                                       "returns a zero tangent for such an op (use twinop.torch.bias_act)")
def test_raw_op_under_torch_func_jvp():
    x, bias, _ = inputs(seed=17)
    t_x, _, _ = inputs(seed=18)
    assert_same(jvp(lambda a: torch.ops.twinop.bias_act(a, bias, "gelu"), (x,), (t_x,)),
                jvp(lambda a: native("gelu")(a, bias), (x,), (t_x,)))


def test_functional_hvp_raises_and_vhp_works():
    x, bias, _ = inputs(seed=19)
    v, _, _ = inputs(seed=20)
    with pytest.raises(NotImplementedError, match="third-order"):
        torch.autograd.functional.hvp(lambda a: ours("silu")(a, bias).sin().sum(), x, v)
    assert_same(torch.autograd.functional.vhp(lambda a: ours("silu")(a, bias).sin().sum(), x, v),
                torch.autograd.functional.vhp(lambda a: native("silu")(a, bias).sin().sum(), x, v))


@pytest.mark.parametrize("act", ["gelu", "silu"])
def test_forward_mode_composed_with_vmap(act):
    """bias_act skips the Function when nothing is differentiated; every forward-mode entry must
    still reach it, batched or not."""
    x, bias, _ = inputs((3, 4, 7), seed=21)
    t_x = torch.ones_like(x)

    def jvp_of_vmap(fn):
        return jvp(vmap(lambda a: fn(a, bias)), (x,), (t_x,))

    def vmap_of_jvp(fn):
        return vmap(lambda a, t: jvp(lambda u: fn(u, bias), (a,), (t,))[1])(x, t_x)

    assert_same(jvp_of_vmap(ours(act)), jvp_of_vmap(native(act)))
    assert_same(vmap_of_jvp(ours(act)), vmap_of_jvp(native(act)))


def test_plain_calls_skip_the_function_and_differentiated_calls_use_it():
    x, bias, _ = inputs(seed=22)
    assert tt.bias_act(x, bias).grad_fn is None
    assert type(tt.bias_act(x.requires_grad_(), bias).grad_fn).__name__ == "BiasActBackward"
    with torch.no_grad():
        assert tt.bias_act(x, bias).grad_fn is None


def test_a_first_order_backward_calls_the_op_and_a_differentiable_one_the_function(monkeypatch):
    """Without create_graph nothing differentiates the backward: the op alone serves it, without
    BiasActBackward.apply's cost; with create_graph, or a forward-mode level open
    (forward-over-reverse), the Function records it for the next order."""
    from twinop.torch import _bias_act_function
    applied = []
    real_apply = _bias_act_function.BiasActBackward.apply
    monkeypatch.setattr(_bias_act_function.BiasActBackward, "apply",
                        lambda *args: applied.append(args) or real_apply(*args))
    x, bias, dy = inputs(seed=23)
    x.requires_grad_(), bias.requires_grad_()
    y = tt.bias_act(x, bias, "gelu")
    want = torch.autograd.grad(F.gelu(x + bias), (x, bias), dy)
    assert_same(torch.autograd.grad(y, (x, bias), dy, retain_graph=True), want)
    assert not applied
    assert_same(torch.autograd.grad(y, (x, bias), dy, create_graph=True), want)
    assert len(applied) == 1
    tangent = torch.randn_like(x)
    with forward_ad.dual_level():
        tangents = []
        for fn in (lambda a: tt.bias_act(a, bias, "gelu"), lambda a: F.gelu(a + bias)):
            dual = forward_ad.make_dual(x.detach().requires_grad_(), tangent)
            grad_x, = torch.autograd.grad(fn(dual), dual, dy)
            tangents.append(forward_ad.unpack_dual(grad_x).tangent)
    assert_same(tangents[0], tangents[1])
