"""The PyTorch binding on the CPU: against the float64 reference, autograd, opcheck, errors."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
tt = pytest.importorskip("twinop.torch", exc_type=ImportError)

from cases import ACTIVATIONS, DTYPES, SHAPES, SPECIAL_X, make_inputs, rows_of  # noqa: E402
from tolerances import assert_close  # noqa: E402
from twinop import reference  # noqa: E402


def to_torch(values, dtype_name, **kwargs):
    return torch.tensor(values, dtype=getattr(torch, dtype_name), **kwargs)


def to_numpy(t):
    return t.detach().to(torch.float64).numpy()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_and_backward_match_reference(act, dtype, shape):
    x, bias, dy = make_inputs(shape, dtype)
    xt, bt = to_torch(x, dtype, requires_grad=True), to_torch(bias, dtype, requires_grad=True)
    y = tt.bias_act(xt, bt, act)
    y.backward(to_torch(dy, dtype))
    assert y.dtype == xt.dtype and y.shape == xt.shape
    want_dx, want_dbias = reference.bias_act_backward(dy, x, bias, act)
    assert_close(to_numpy(y), reference.bias_act(x, bias, act), dtype, what="y")
    assert_close(to_numpy(xt.grad), want_dx, dtype, what="dx")
    assert_close(to_numpy(bt.grad), want_dbias, dtype, summed=rows_of(shape), what="dbias")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_raw_backward_op_returns_dx_and_dbias(act):
    x, bias, dy = make_inputs((6, 11), "float64")
    dx, dbias = torch.ops.twinop.bias_act_backward(to_torch(dy, "float64"), to_torch(x, "float64"),
                                                  to_torch(bias, "float64"), act)
    want_dx, want_dbias = reference.bias_act_backward(dy, x, bias, act)
    assert_close(to_numpy(dx), want_dx, "float64")
    assert_close(to_numpy(dbias), want_dbias, "float64", summed=6)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_non_contiguous_inputs(act):
    base = to_torch(make_inputs((40, 40), "float32")[0], "float32")
    bias = to_torch(make_inputs((40,), "float32")[0], "float32")
    for x in (base.t(), base[:, ::2], base[::3], base.unsqueeze(0).expand(2, 40, 40)):
        assert not x.is_contiguous()
        b = bias[: x.shape[-1]]
        want = reference.bias_act(to_numpy(x), to_numpy(b), act)
        assert_close(to_numpy(tt.bias_act(x, b, act)), want, "float32")
        dx, dbias = torch.ops.twinop.bias_act_backward(x, x, b, act)
        want_dx, want_dbias = reference.bias_act_backward(to_numpy(x), to_numpy(x), to_numpy(b), act)
        assert_close(to_numpy(dx), want_dx, "float32")
        assert_close(to_numpy(dbias), want_dbias, "float32", summed=rows_of(tuple(x.shape)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_input(dtype):
    x = torch.zeros(0, 5, dtype=getattr(torch, dtype), requires_grad=True)
    bias = torch.ones(5, dtype=getattr(torch, dtype), requires_grad=True)
    y = tt.bias_act(x, bias)
    assert y.shape == (0, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 5)
    assert torch.equal(bias.grad, torch.zeros_like(bias))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nan_and_inf_propagate_as_the_reference(act):
    x = torch.tensor(SPECIAL_X, requires_grad=True)
    bias = torch.zeros(SPECIAL_X.shape[-1], dtype=torch.float64)
    y = tt.bias_act(x, bias, act)
    y.backward(torch.ones_like(y))
    assert_close(to_numpy(y), reference.bias_act(SPECIAL_X, to_numpy(bias), act), "float64")
    want_dx = reference.bias_act_backward(np.ones_like(SPECIAL_X), SPECIAL_X, to_numpy(bias), act)[0]
    assert_close(to_numpy(x.grad), want_dx, "float64")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradcheck_float64(act):
    x, bias, _ = make_inputs((4, 7), "float64", seed=1)
    if act == "relu":  # relu has no derivative at 0: keep x + bias away from it
        x = np.where(np.abs(x + bias) < 0.1, x + 0.5, x)
    xt, bt = torch.tensor(x, requires_grad=True), torch.tensor(bias, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: tt.bias_act(a, b, act), (xt, bt))


def test_gradient_flows_to_bias_alone():
    x = torch.randn(3, 4, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    tt.bias_act(x, bias, "silu").sum().backward()
    want = reference.bias_act_backward(np.ones((3, 4)), x.numpy(), bias.detach().numpy(), "silu")[1]
    assert_close(to_numpy(bias.grad), want, "float64", summed=3)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_opcheck(act):
    x, bias, dy = make_inputs((3, 5, 7), "float32", seed=2)
    args = (to_torch(x, "float32", requires_grad=True), to_torch(bias, "float32", requires_grad=True), act)
    torch.library.opcheck(torch.ops.twinop.bias_act.default, args)
    torch.library.opcheck(torch.ops.twinop.bias_act_backward.default,
                          (to_torch(dy, "float32"), args[0].detach(), args[1].detach(), act))


BAD_INPUTS = [
    # (x, bias, act, exception, words the message must contain)
    (torch.ones(2, 3), torch.ones(4), "gelu", ValueError, ["bias", "3"]),
    (torch.ones(2, 3), torch.ones(3, 1), "gelu", ValueError, ["bias", "1-D"]),
    (torch.tensor(1.0), torch.ones(1), "gelu", ValueError, ["x", "dimension"]),
    (torch.ones(2, 3), torch.ones(3, dtype=torch.float64), "gelu", TypeError, ["bias", "dtype"]),
    (torch.ones(2, 3, dtype=torch.int32), torch.ones(3, dtype=torch.int32), "gelu", TypeError, ["x", "Int"]),
    (torch.ones(2, 3), torch.ones(3), "tanh", ValueError, ["act", "gelu_tanh"]),
]


def raw_op_error(error):
    """What the raw ops raise where twinop.torch.bias_act raises `error`: the same on the classic
    library, RuntimeError on the stable-ABI one (its C++ can raise no other type)."""
    return error if tt.ABI == "classic" else RuntimeError


@pytest.mark.parametrize("x,bias,act,error,words", BAD_INPUTS)
def test_bad_input_raises_and_leaves_inputs_unchanged(x, bias, act, error, words):
    x_before, bias_before = x.clone(), bias.clone()
    for call, raised in ((lambda: tt.bias_act(x, bias, act), error),
                         (lambda: torch.ops.twinop.bias_act_backward(x, x, bias, act), raw_op_error(error))):
        with pytest.raises(raised) as info:
            call()
        assert all(w in str(info.value) for w in words), str(info.value)
    assert torch.equal(x, x_before) and torch.equal(bias, bias_before)


@pytest.mark.parametrize("x,bias,act,error,words", BAD_INPUTS)
def test_entry_point_and_raw_op_give_the_same_message(x, bias, act, error, words):
    """twinop.torch.bias_act checks in Python (_checks.py), the op in C++ (bias_act_args.h): one text."""
    with pytest.raises(error) as checked:
        tt.bias_act(x, bias, act)
    with pytest.raises(raw_op_error(error)) as raw:
        torch.ops.twinop.bias_act(x, bias, act)
    assert str(checked.value) == str(raw.value)


@pytest.mark.parametrize("x,error,words", [(torch.ones(2, 4), ValueError, ["bias", "3"]),
                                           (torch.ones(2, 3, dtype=torch.float64), TypeError, ["bias", "dtype"])])
def test_module_raises_as_bias_act(x, error, words):
    with pytest.raises(error) as info:
        tt.BiasAct(3)(x)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_backward_rejects_dy_of_another_shape():
    with pytest.raises(raw_op_error(ValueError), match="dy"):
        torch.ops.twinop.bias_act_backward(torch.ones(3, 3), torch.ones(2, 3), torch.ones(3), "gelu")


def test_inputs_are_not_modified():
    x, bias = torch.randn(4, 9), torch.randn(9)
    x_before, bias_before = x.clone(), bias.clone()
    tt.bias_act(x, bias, "silu")
    torch.ops.twinop.bias_act_backward(x, x, bias, "silu")
    assert torch.equal(x, x_before) and torch.equal(bias, bias_before)


def test_dbias_is_bit_identical_for_any_thread_count():
    x, bias, dy = (torch.tensor(a, dtype=torch.float32) for a in make_inputs((512, 300), "float32", seed=3))
    threads = torch.get_num_threads()
    try:
        results = []
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            results.append(torch.ops.twinop.bias_act_backward(dy, x, bias, "gelu"))
    finally:
        torch.set_num_threads(threads)
    for dx, dbias in results[1:]:
        assert torch.equal(dx, results[0][0]) and torch.equal(dbias, results[0][1])
