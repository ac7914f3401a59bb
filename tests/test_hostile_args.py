"""Hostile attributes through every call of every binding (tests/bindings.py): bias_act's `act`
strings, RMSNorm's `eps` and `offset` values. Each gives the binding's documented error (ValueError
in numpy and PyTorch; InvalidArgumentError in TensorFlow's eager mode, ValueError while tracing a
tf.function), names the argument, leaves the inputs unchanged, and nothing crashes."""
from types import SimpleNamespace

import numpy as np
import pytest

import bindings
from op_specs import OPS, RmsNormAttrs, input_shapes

HOSTILE_ACTS = {
    "empty": "",
    "1 MB long": "gelu" * 250_000,
    "non-ASCII": "gélu",
    "non-Latin": "ゲル",
    "NUL inside": "gel\0u",
    "NUL after": "gelu\0",
    "NUL alone": "\0",
    "upper case": "GELU",
    "title case": "Gelu",
    "leading space": " gelu",
    "trailing space": "gelu ",
    "space inside": "gelu tanh",
    "newline": "silu\n",
    "tab": "\trelu",
    "another activation": "tanh",
    "prefix": "gelu_",
}
ALLOWED = "act must be one of gelu, gelu_tanh, silu, relu"


def act_errors(binding):
    if binding.name == "tensorflow":
        return (binding.tf.errors.InvalidArgumentError, ValueError)
    return getattr(binding, "argument_errors", (ValueError,))


def small_inputs(binding):
    """{name: tensor} for every input a call of any op may take: x [2, 3, 5] and its like, float32."""
    rng = np.random.default_rng(0)
    shapes = {name: shape for op in OPS for name, shape in input_shapes(op, (2, 3, 5)).items()}
    return {name: binding.tensor(rng.normal(size=shape).astype(np.float32).astype(np.float64), "float32")
            for name, shape in shapes.items()}


def calls_of(op):
    return [(b, c) for b, c in bindings.calls() if c is None or bindings.load(b).calls[c].op in op]


CALLS = calls_of(("bias_act",))
RMS_NORM_CALLS = calls_of(("rms_norm", "add_rms_norm"))


@pytest.mark.parametrize("act", HOSTILE_ACTS.values(), ids=HOSTILE_ACTS.keys())
@pytest.mark.parametrize("binding_name,call_name", CALLS, ids=[f"{b}: {c}" for b, c in CALLS])
def test_bad_act_raises_the_documented_error(binding_name, call_name, act):
    if call_name is None:
        pytest.skip(f"the {binding_name} binding was not built")
    binding = bindings.load(binding_name)
    inputs = small_inputs(binding)
    before = {name: binding.bits(t) for name, t in inputs.items()}
    with pytest.raises(act_errors(binding)) as info:
        binding.calls[call_name].fn(SimpleNamespace(**inputs), act)
    message = str(info.value)
    assert "act" in message, message
    if binding.name != "tensorflow":  # TensorFlow's own attr check writes the message there
        assert ALLOWED in message, message
        assert "\0" not in message and len(message) < 300, message  # quoted, escaped and cut
    assert all(binding.bits(t) == before[name] for name, t in inputs.items())


HOSTILE_RMS_NORM_ATTRS = {  # (eps, offset) and what the message names
    "negative eps": (RmsNormAttrs(-1e-6, 0.0), "eps must be finite and >= 0"),
    "NaN eps": (RmsNormAttrs(float("nan"), 0.0), "eps must be finite and >= 0"),
    "infinite eps": (RmsNormAttrs(float("inf"), 0.0), "eps must be finite and >= 0"),
    "-Inf eps": (RmsNormAttrs(float("-inf"), 0.0), "eps must be finite and >= 0"),
    "NaN offset": (RmsNormAttrs(1e-6, float("nan")), "offset must be finite"),
    "infinite offset": (RmsNormAttrs(1e-6, float("inf")), "offset must be finite"),
}


@pytest.mark.parametrize("case", HOSTILE_RMS_NORM_ATTRS)
@pytest.mark.parametrize("binding_name,call_name", RMS_NORM_CALLS, ids=[f"{b}: {c}" for b, c in RMS_NORM_CALLS])
def test_bad_eps_or_offset_raises_the_documented_error(binding_name, call_name, case):
    if call_name is None:
        pytest.skip(f"the {binding_name} binding was not built")
    binding = bindings.load(binding_name)
    inputs = small_inputs(binding)
    before = {name: binding.bits(t) for name, t in inputs.items()}
    attrs, words = HOSTILE_RMS_NORM_ATTRS[case]
    with pytest.raises(act_errors(binding)) as info:
        binding.calls[call_name].fn(SimpleNamespace(**inputs), attrs)
    assert words in str(info.value), str(info.value)
    assert all(binding.bits(t) == before[name] for name, t in inputs.items())


# What a str that is not text, or no str at all, gives: each framework's own argument parser
# answers before twinop sees the value.
NOT_TEXT = {"None": None, "int": 1, "lone surrogate": "\ud800", "bytes, not UTF-8": b"gel\xffu"}
NOT_TEXT_ERRORS = {  # pybind11's overload error, but bytes pass as a name: twinop's ValueError
    "numpy": {"None": TypeError, "int": TypeError, "lone surrogate": TypeError, "bytes, not UTF-8": ValueError},
    # torch: bytes pass as a name too (twinop's ValueError); where a call records autograd, torch's
    # Python autograd kernel decodes them first: UnicodeDecodeError, a ValueError as well.
    "torch": {"None": RuntimeError, "int": RuntimeError, "lone surrogate": RuntimeError,  # schema mismatch
              "bytes, not UTF-8": ValueError},
    "tensorflow": {"None": TypeError, "int": TypeError, "lone surrogate": UnicodeEncodeError,
                   "bytes, not UTF-8": UnicodeDecodeError},
    # twinop.jax checks act itself at trace time, any value: its own ValueError, the name quoted.
    "jax": {"None": ValueError, "int": ValueError, "lone surrogate": ValueError, "bytes, not UTF-8": ValueError},
}


@pytest.mark.parametrize("what", NOT_TEXT)
@pytest.mark.parametrize("binding_name", bindings.BINDINGS)
def test_act_that_is_not_text_raises_the_framework_error(binding_name, what):
    binding = bindings.load(binding_name)
    inputs = SimpleNamespace(**small_inputs(binding))
    public = {"numpy": "bias_act", "torch": "bias_act", "tensorflow": "bias_act + tape eager",
              "jax": "bias_act"}[binding_name]
    with pytest.raises(NOT_TEXT_ERRORS[binding_name][what]):
        binding.calls[public].fn(inputs, NOT_TEXT[what])


@pytest.mark.parametrize("act", HOSTILE_ACTS.values(), ids=HOSTILE_ACTS.keys())
def test_modules_refuse_a_bad_act(act):
    """The PyTorch module and the Keras layer check act when they are made."""
    torch_module = pytest.importorskip("twinop.torch", exc_type=ImportError).BiasAct
    keras_layer = pytest.importorskip("twinop.tf", exc_type=ImportError).BiasAct
    for make in (lambda: torch_module(5, act=act), lambda: keras_layer(act=act)):
        with pytest.raises(ValueError, match="act must be one of"):
            make()


# numpy arrays whose memory the kernels cannot read as it is: the binding copies inputs into
# native byte order and alignment, and refuses such an out=.


def misaligned(array):
    """A copy of array whose data starts one byte past an element boundary."""
    raw = np.zeros(array.nbytes + 1, np.uint8)
    copy = np.ndarray(array.shape, array.dtype, buffer=raw, offset=1)
    copy[...] = array
    assert not copy.flags.aligned
    return copy


ODD_MEMORY = {"big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")), "misaligned": misaligned}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("memory", ODD_MEMORY)
def test_numpy_reads_inputs_in_any_byte_order_and_alignment(memory, dtype):
    tn = bindings.load("numpy").tn
    rng = np.random.default_rng(1)
    x, dy, g = (rng.normal(size=(3, 7)).astype(dtype) for _ in range(3))
    bias, g_bias = (rng.normal(size=7).astype(dtype) for _ in range(2))
    odd = [ODD_MEMORY[memory](a) for a in (x, bias, dy, g, g_bias)]
    np.testing.assert_array_equal(tn.bias_act(odd[0], odd[1], "gelu"), tn.bias_act(x, bias, "gelu"))
    for got, want in zip(tn.bias_act_backward(odd[2], odd[0], odd[1], "silu"), tn.bias_act_backward(dy, x, bias, "silu")):
        np.testing.assert_array_equal(got, want)
    got = tn.bias_act_double_backward(odd[3], odd[2], odd[0], odd[1], "gelu_tanh", g_bias=odd[4])
    for a, b in zip(got, tn.bias_act_double_backward(g, dy, x, bias, "gelu_tanh", g_bias=g_bias)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("memory", ODD_MEMORY)
def test_numpy_refuses_an_out_it_cannot_write_as_it_is(memory):
    tn = bindings.load("numpy").tn
    x, bias = np.ones((3, 7), np.float32), np.zeros(7, np.float32)
    out = ODD_MEMORY[memory](np.full_like(x, np.nan))
    before = out.tobytes()
    with pytest.raises(ValueError, match="out must be aligned and in the machine's byte order"):
        tn.bias_act(x, bias, out=out)
    with pytest.raises(ValueError, match="dbias must be aligned"):
        tn.bias_act_backward(x, x, bias, out=(np.empty_like(x), ODD_MEMORY[memory](np.empty_like(bias))))
    assert out.tobytes() == before


# Under torch.func.vmap, the batching rules add a batched bias to x and cast to the compute dtype
# before the op sees its arguments: they check one example's arguments with the op first.


def vmap_cases(torch):
    ops, b = torch.ops.twinop, torch.zeros(3)
    f64 = dict(dtype=torch.float64)
    vmap = torch.func.vmap
    return {
        "x without a feature axis": (lambda: vmap(lambda x: ops.bias_act(x, b, "relu"))(torch.ones(3)),
                                     ValueError, "x must have at least 1 dimension"),
        "bias of another dtype": (lambda: vmap(lambda x, b: ops.bias_act(x, b, "relu"))(torch.ones(2, 3),
                                                                                       torch.ones(2, 3, **f64)),
                                  TypeError, "bias must have the dtype of x"),
        "bias of another size": (lambda: vmap(lambda x, b: ops.bias_act(x, b, "relu"))(torch.ones(2, 3),
                                                                                      torch.ones(2, 4)),
                                 ValueError, "bias must have x.shape"),
        "dy of another dtype": (lambda: vmap(lambda dy, x: ops.bias_act_backward(dy, x, b, "relu"))(
            torch.ones(2, 3, **f64), torch.ones(2, 3)), TypeError, "dy must have the dtype of x"),
        "g_bias of another size": (lambda: vmap(lambda g, g_bias: ops.bias_act_double_backward(
            g, g_bias, torch.ones(2, 3), torch.ones(2, 3), b, "relu"))(torch.ones(2, 2, 3), torch.ones(2, 4)),
            ValueError, "g_bias must have the shape of bias"),
        "bad act": (lambda: vmap(lambda x: ops.bias_act(x, b, "GELU"))(torch.ones(2, 3)), ValueError,
                    "act must be one of"),
    }


@pytest.mark.parametrize("case", ["x without a feature axis", "bias of another dtype", "bias of another size",
                                  "dy of another dtype", "g_bias of another size", "bad act"])
def test_vmap_raises_the_ops_own_errors(case):
    """The raw ops' own messages under vmap; as their type, RuntimeError on the stable-ABI library
    (its C++ can raise no other type)."""
    torch = pytest.importorskip("torch")
    tt = pytest.importorskip("twinop.torch", exc_type=ImportError)
    call, error, words = vmap_cases(torch)[case]
    with pytest.raises(error if tt.ABI == "classic" else RuntimeError, match=words):
        call()
