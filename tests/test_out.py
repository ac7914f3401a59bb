"""Writing into the caller's memory: out= in PyTorch and numpy (checked, aliasing rules, not
differentiable in PyTorch), and TensorFlow's kernels computing in an input's buffer."""
import numpy as np
import pytest

import twinop.numpy as tn
from cases import ACTIVATIONS, DTYPES, make_inputs, numpy_dtype, rows_of
from tolerances import assert_close
from twinop import reference

SHAPES = [(37,), (5, 13), (2, 3, 64)]


# numpy


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_numpy_out_matches_the_allocating_call(act, dtype, shape):
    x, bias, dy = (a.astype(numpy_dtype(dtype)) for a in make_inputs(shape, dtype))
    out = np.full_like(x, np.nan)
    assert tn.bias_act(x, bias, act, out=out) is out
    np.testing.assert_array_equal(out, tn.bias_act(x, bias, act))
    dx, dbias = np.full_like(x, np.nan), np.full_like(bias, np.nan)
    got = tn.bias_act_backward(dy, x, bias, act, out=(dx, dbias))
    assert got[0] is dx and got[1] is dbias
    for a, b in zip((dx, dbias), tn.bias_act_backward(dy, x, bias, act)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_numpy_in_place(act):
    x, bias, dy = make_inputs((6, 40), "float32")
    x, bias, dy = x.astype(np.float32), bias.astype(np.float32), dy.astype(np.float32)
    y_want = tn.bias_act(x, bias, act)
    dx_want, dbias_want = tn.bias_act_backward(dy, x, bias, act)
    for dx_into in ("dy", "x"):
        inputs = {"dy": dy.copy(), "x": x.copy()}
        dx, dbias = tn.bias_act_backward(inputs["dy"], inputs["x"], bias, act, out=(inputs[dx_into], np.empty_like(bias)))
        np.testing.assert_array_equal(dx, dx_want)
        np.testing.assert_array_equal(dbias, dbias_want)
    y = x.copy()
    tn.bias_act(y, bias, act, out=y)
    np.testing.assert_array_equal(y, y_want)


def numpy_bad_outs():
    x = np.ones((4, 8), np.float32)
    shared = np.ones(5 * 8, np.float32)
    return x, [
        ("shape", np.empty((4, 7), np.float32), ValueError, "out must have the shape of x [4, 8]; got [4, 7]"),
        ("dtype", np.empty((4, 8)), TypeError, "out must have the dtype of x (float32); got float64"),
        ("layout", np.empty((8, 4), np.float32).T, ValueError, "out must be contiguous"),
        ("type", [[0.0] * 8] * 4, TypeError, "out must be a numpy array; got list"),
        ("overlap", shared[8:].reshape(4, 8), ValueError, "out must not share memory with x unless it is x itself"),
    ], shared[:32].reshape(4, 8)


@pytest.mark.parametrize("case", range(5))
def test_numpy_bad_out_raises_and_changes_nothing(case):
    x, bad_outs, overlapping_x = numpy_bad_outs()
    what, out, error, message = bad_outs[case]
    x = overlapping_x if what == "overlap" else x
    bias = np.ones(8, np.float32)
    before = [np.copy(a) for a in (x, bias)]
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        tn.bias_act(x, bias, out=out)
    for a, b in zip((x, bias), before):
        np.testing.assert_array_equal(a, b)


def test_numpy_read_only_out_and_backward_out_rules():
    x, bias = np.ones((4, 8), np.float32), np.ones(8, np.float32)
    read_only = np.empty_like(x)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        tn.bias_act(x, bias, out=read_only)
    with pytest.raises(TypeError, match=r"out must be a tuple \(dx, dbias\)"):
        tn.bias_act_backward(x, x, bias, out=np.empty_like(x))
    with pytest.raises(ValueError, match="dbias must not share memory with bias"):
        tn.bias_act_backward(x, x, bias, out=(np.empty_like(x), bias))


# PyTorch


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("twinop.torch", exc_type=ImportError)
    return torch


def from_the_op(error):
    """What the op's C++ raises for a rule only it checks (memory overlap): `error` from the
    classic library, RuntimeError from the stable-ABI one (its C++ can raise no other type)."""
    import twinop.torch as tt

    return error if tt.ABI == "classic" else RuntimeError


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_torch_out_matches_the_allocating_call(torch, act, dtype, shape):
    import twinop.torch as tt

    x, bias, dy = (torch.tensor(a, dtype=getattr(torch, dtype)) for a in make_inputs(shape, dtype))
    out = torch.full_like(x, float("nan"))
    assert tt.bias_act(x, bias, act, out=out) is out
    assert torch.equal(out, tt.bias_act(x, bias, act))
    dx, dbias = torch.full_like(x, float("nan")), torch.full_like(bias, float("nan"))
    got = torch.ops.twinop.bias_act_backward.out(dy, x, bias, act, dx=dx, dbias=dbias)
    assert got[0] is dx and got[1] is dbias
    want_dx, want_dbias = reference.bias_act_backward(*(t.double().numpy() for t in (dy, x, bias)), act)
    assert_close(dx.double().numpy(), want_dx, dtype)
    assert_close(dbias.double().numpy(), want_dbias, dtype, summed=rows_of(shape))


def test_torch_in_place_on_the_cpu(torch):
    import twinop.torch as tt

    x, bias, dy = (torch.tensor(a, dtype=torch.float32) for a in make_inputs((6, 40), "float32"))
    y_want = tt.bias_act(x, bias, "silu")
    dx_want, dbias_want = torch.ops.twinop.bias_act_backward(dy, x, bias, "silu")
    y = x.clone()
    assert tt.bias_act(y, bias, "silu", out=y) is y and torch.equal(y, y_want)
    for into in ("dy", "x"):
        inputs = {"dy": dy.clone(), "x": x.clone()}
        dx, dbias = torch.ops.twinop.bias_act_backward.out(inputs["dy"], inputs["x"], bias, "silu", dx=inputs[into],
                                                           dbias=torch.empty_like(bias))
        assert torch.equal(dx, dx_want) and torch.equal(dbias, dbias_want)


def test_torch_bad_out_raises_and_changes_nothing(torch):
    import twinop.torch as tt

    x, bias = torch.ones(4, 8), torch.ones(8)
    shared = torch.ones(5 * 8)
    cases = [
        (x, torch.empty(4, 7), ValueError, r"out must have the shape of x \[4, 8\]; got \[4, 7\]"),
        (x, torch.empty(4, 8, dtype=torch.float64), TypeError, r"out must have the dtype of x \(Float\)"),
        (x, torch.empty(8, 4).t(), ValueError, "out must be contiguous"),
        (x, torch.empty(4, 8, device="meta"), RuntimeError, r"out must be on the device of x \(cpu\); got meta"),
        (shared[:32].view(4, 8), shared[8:].view(4, 8), from_the_op(ValueError),
         "out must not share memory with x unless it is x"),
    ]
    for x_in, out, error, message in cases:
        before = [t.clone() for t in (x_in, bias)]
        with pytest.raises(error, match=message):
            tt.bias_act(x_in, bias, out=out)
        assert all(torch.equal(a, b) for a, b in zip((x_in, bias), before))
    with pytest.raises(from_the_op(ValueError), match="out must not share memory with bias"):
        tt.bias_act(torch.ones(1, 8), shared[:8], out=shared[:8].view(1, 8))
    with pytest.raises(from_the_op(ValueError), match="dbias must not share memory with dx"):
        flat = torch.empty(40)
        torch.ops.twinop.bias_act_backward.out(x, x, bias, "gelu", dx=flat[:32].view(4, 8), dbias=flat[24:32])


def test_torch_out_is_not_differentiable_and_says_so(torch):
    import twinop.torch as tt

    x, bias = torch.ones(4, 8, requires_grad=True), torch.ones(8)
    with pytest.raises(RuntimeError, match=r"functions with out=\.\.\. arguments don't support automatic differentiation"):
        tt.bias_act(x, bias, out=torch.empty(4, 8))
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        torch.ops.twinop.bias_act_backward.out(x, x, bias, "gelu", dx=torch.empty(4, 8), dbias=torch.empty(8))
    with torch.no_grad():  # no gradient asked for: fine
        tt.bias_act(x, bias, out=torch.empty(4, 8))


def test_torch_out_bumps_the_version_so_a_stale_backward_fails(torch):
    """Overwriting a tensor the backward saved is caught, as for PyTorch's own in-place ops."""
    import twinop.torch as tt

    leaf, bias = torch.randn(4, 8, requires_grad=True), torch.randn(8)
    x = leaf * 1
    y = tt.bias_act(x, bias)
    with torch.no_grad():
        tt.bias_act(x, bias, out=x)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# Not test_aot_dispatch_dynamic: a custom op returning its out argument (PyTorch's out= schema)
# cannot be functionalized, which is why out= is eager only (next test).
EAGER_OPCHECKS = ("test_schema", "test_autograd_registration", "test_faketensor")


def test_torch_opcheck_out_overloads(torch):
    x, bias, dy = (torch.tensor(a, dtype=torch.float32) for a in make_inputs((3, 5, 7), "float32", seed=2))
    torch.library.opcheck(torch.ops.twinop.bias_act.out, (x, bias, "gelu"), {"out": torch.empty_like(x)},
                          test_utils=EAGER_OPCHECKS)
    torch.library.opcheck(torch.ops.twinop.bias_act_backward.out, (dy, x, bias, "gelu"),
                          {"dx": torch.empty_like(x), "dbias": torch.empty_like(bias)}, test_utils=EAGER_OPCHECKS)


def test_torch_out_under_compile(torch):
    """fullgraph: our error; otherwise Dynamo breaks the graph there and the call runs eagerly."""
    import twinop.torch as tt

    x, bias, out = torch.randn(4, 8), torch.randn(8), torch.empty(4, 8)
    torch._dynamo.reset()
    with pytest.raises(Exception, match="out= is not supported under torch.compile"):
        torch.compile(lambda: tt.bias_act(x, bias, out=out), fullgraph=True)()
    torch._dynamo.reset()
    assert torch.compile(lambda: tt.bias_act(x, bias, out=out))() is out
    assert torch.equal(out, tt.bias_act(x, bias))


# TensorFlow


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_tf_in_place_results_match_the_reference(act, dtype):
    """In a tf.function, x * 1 and the tape's dy are held by nobody else: the CPU kernels may
    compute in their buffers (forward_input_or_allocate_output). The results are unchanged."""
    tf = pytest.importorskip("tensorflow")
    ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)
    x, bias, dy = make_inputs((33, 70), dtype, seed=4)

    @tf.function
    def step(x, bias, dy):
        with tf.GradientTape() as tape:
            tape.watch([x, bias])
            y = ttf.bias_act(x * 1, bias, act)
        return (y, *tape.gradient(y, [x, bias], output_gradients=dy * 1))

    y, dx, dbias = step(*(tf.cast(tf.constant(a), dtype) for a in (x, bias, dy)))
    want_dx, want_dbias = reference.bias_act_backward(dy, x, bias, act)
    assert_close(tf.cast(y, tf.float64).numpy(), reference.bias_act(x, bias, act), dtype, what="y")
    assert_close(tf.cast(dx, tf.float64).numpy(), want_dx, dtype, what="dx")
    assert_close(tf.cast(dbias, tf.float64).numpy(), want_dbias, dtype, summed=33, what="dbias")


# Each raw op, its inputs, and the input whose buffer its CPU kernel may compute in for an output.
IN_PLACE = {"twinop_bias_act": (("x", "bias"), "x", 0), "twinop_bias_act_grad": (("dy", "x", "bias"), "dy", 0),
            "twinop_bias_act_grad_grad": (("g", "g_bias", "dy", "x", "bias"), "dy", 1)}


@pytest.mark.parametrize("op", IN_PLACE)
def test_tf_cpu_kernels_compute_in_an_input_that_nobody_else_holds(op):
    """Seen in TensorFlow's own step statistics (RunMetadata with FULL_TRACE), which give the
    address of each output's buffer: fed a temporary that nobody else holds, the op writes its
    output there; fed one that the caller also fetches, into a buffer of its own."""
    tf = pytest.importorskip("tensorflow")
    ttf = pytest.importorskip("twinop.tf", exc_type=ImportError)
    names, reused, output = IN_PLACE[op]
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (64, 96))
        values = {name: x * (k + 2) if name not in ("bias", "g_bias") else tf.ones(96) for k, name in enumerate(names)}
        free = tf.nest.flatten(getattr(ttf._ops, op)(*values.values(), act="gelu"))[0].op
        free_input = values[reused]
        values[reused] = held_input = x * 9  # the same kind of temporary, but the caller fetches it too
        held = tf.nest.flatten(getattr(ttf._ops, op)(*values.values(), act="gelu"))[0].op
    with tf.compat.v1.Session(graph=graph) as session:
        metadata = tf.compat.v1.RunMetadata()
        session.run([free, held, held_input], {x: np.ones((64, 96), np.float32)}, run_metadata=metadata,
                    options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE))
    address = {(node.node_name, out.slot): out.tensor_description.allocation_description.ptr
               for device in metadata.step_stats.dev_stats for node in device.node_stats for out in node.output}
    assert address[(free.name, output)] == address[(free_input.op.name, 0)]
    assert address[(held.name, output)] != address[(held_input.op.name, 0)]
