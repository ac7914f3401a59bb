"""JAX autodiff and batching, against the native composition act(x + b) in float64: grad and vjp,
forward mode (jvp, linearize, jacfwd), second order in every mix of the two modes (Hessians,
jvp of grad, grad of jvp, jax.test_util.check_grads), vmap with batched x, bias or both of each,
without a per-example loop; the fused backward kept under jax.grad; third order's error."""
import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")
tj = pytest.importorskip("twinop.jax", exc_type=ImportError)

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from cases import ACTIVATIONS, make_inputs  # noqa: E402
from tolerances import NATIVE_FLOAT64  # noqa: E402
from twinop.jax._bias_act_ops import backward_p, bind  # noqa: E402
from twinop.jax._bias_act_second_order import THIRD_ORDER_ERROR  # noqa: E402

NATIVE = {
    "gelu": lambda v: jax.nn.gelu(v, approximate=False),
    "gelu_tanh": lambda v: jax.nn.gelu(v, approximate=True),
    "silu": jax.nn.silu,
    "relu": jax.nn.relu,
}
RTOL, ATOL = NATIVE_FLOAT64["jax"]


pytestmark = pytest.mark.usefixtures("jax_float64")  # float64 arrays in this module (conftest.py)


def inputs(shape=(4, 7), seed=0):
    """float64 (x, bias, dy) with x + bias kept 0.1 away from relu's kink."""
    x, bias, dy = make_inputs(shape, "float64", seed)
    x = np.where(np.abs(x + bias) < 0.1, x + 0.3, x)
    return tuple(jnp.asarray(a) for a in (x, bias, dy))


def ours(act):
    return lambda x, bias: tj.bias_act(x, bias, act)


def native(act):
    return lambda x, bias: NATIVE[act](x + bias)


def assert_same(got, want):
    """Pytrees of arrays equal to float64 precision."""
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL), got, want)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_matches_jax_nn(act):
    x, bias, _ = inputs()
    assert_same(ours(act)(x, bias), native(act)(x, bias))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_grad_and_vjp(act, jit):
    x, bias, dy = inputs(seed=1)

    def grads(f):
        loss = lambda a, b: jnp.sum(jnp.sin(f(a, b)))  # noqa: E731
        return jax.grad(loss, argnums=(0, 1))(x, bias), jax.vjp(f, x, bias)[1](dy)

    wrap = jax.jit if jit else (lambda f: f)
    assert_same(wrap(lambda: grads(ours(act)))(), grads(native(act)))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradient_penalty_step(act):
    """WGAN-GP style: the loss holds the gradient's norm, so the step needs the double backward."""
    x, bias, _ = inputs(seed=2)
    w0 = jnp.linspace(0.5, 1.5, x.shape[-1])

    def step(f):
        def loss(w, b):
            y_sum = lambda a: jnp.sum(f(a * w, b))  # noqa: E731
            return y_sum(x) + jnp.sum(jax.grad(y_sum)(x) ** 2)
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(w0, bias)

    assert_same(step(ours(act)), step(native(act)))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_hessians_by_reverse_over_reverse(act):
    x, bias, _ = inputs(shape=(2, 3), seed=3)

    def hessians(f):
        loss = lambda a, b: jnp.sum(jnp.cos(f(a, b)))  # noqa: E731
        return jax.jacrev(jax.jacrev(loss, argnums=(0, 1)), argnums=(0, 1))(x, bias)

    assert_same(hessians(ours(act)), hessians(native(act)))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_every_second_derivative_of_the_backward(act):
    """The backward differentiated in all three inputs: its derivative is the double backward."""
    x, bias, dy = inputs(seed=4)
    g, g_bias = jnp.cos(x), jnp.sin(bias)

    def native_backward(dy, x, bias):
        _, vjp = jax.vjp(native(act), x, bias)
        return vjp(dy)

    def pullback(backward):
        _, vjp = jax.vjp(backward, dy, x, bias)
        return vjp((g, g_bias))

    assert_same(pullback(lambda *a: bind(backward_p, *a, act=act)), pullback(native_backward))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_every_tangent_of_the_backward(act):
    """The backward's JVP in all three inputs (forward over reverse): the backward_tangent primitive."""
    x, bias, dy = inputs(seed=4)
    tangents = (jnp.sin(dy), jnp.cos(x), jnp.sin(bias))

    def native_backward(dy, x, bias):
        return jax.vjp(native(act), x, bias)[1](dy)

    assert_same(jax.jvp(lambda *a: bind(backward_p, *a, act=act), (dy, x, bias), tangents),
                jax.jvp(native_backward, (dy, x, bias), tangents))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_check_grads_in_both_modes_to_second_order(act, jit):
    """JAX's own checker: forward and reverse mode against finite differences, to second order."""
    x, bias, _ = inputs(seed=9)
    f = ours(act)
    check_grads(jax.jit(f) if jit else f, (x, bias), order=2, modes=["fwd", "rev"])


def loss(f):
    return lambda a, b: jnp.sum(jnp.cos(f(a, b)) * a)


# Forward mode and its mixes with reverse mode, each a function of (x, bias) returning a pytree.
FORWARD_MODE = {
    "jvp": lambda f: lambda a, b: jax.jvp(f, (a, b), (jnp.sin(a), jnp.cos(b))),
    "jvp in x": lambda f: lambda a, b: jax.jvp(lambda c: f(c, b), (a,), (jnp.sin(a),)),
    "jvp in bias": lambda f: lambda a, b: jax.jvp(lambda c: f(a, c), (b,), (jnp.cos(b),)),
    "linearize": lambda f: lambda a, b: jax.linearize(f, a, b)[1](jnp.sin(a), jnp.cos(b)),
    "jacfwd": lambda f: jax.jacfwd(f, argnums=(0, 1)),
    "hessian": lambda f: jax.hessian(loss(f), argnums=(0, 1)),
    "jacfwd of jacfwd": lambda f: jax.jacfwd(jax.jacfwd(loss(f), argnums=(0, 1)), argnums=(0, 1)),
    "jacrev of jacfwd": lambda f: jax.jacrev(jax.jacfwd(loss(f), argnums=(0, 1)), argnums=(0, 1)),
    "jvp of grad": lambda f: lambda a, b: jax.jvp(jax.grad(loss(f), argnums=(0, 1)), (a, b),
                                                   (jnp.sin(a), jnp.cos(b))),
    "grad of jvp": lambda f: jax.grad(lambda a, b: jnp.sum(jax.jvp(f, (a, b), (a * a, jnp.cos(b)))[1] ** 2),
                                      argnums=(0, 1)),
}


# Every activation under jax.jit; eagerly (the same rules, traced slowly op by op) one of them.
JIT_OR_EAGER = [(act, True) for act in ACTIVATIONS] + [("gelu", False)]


@pytest.mark.parametrize("transform", FORWARD_MODE)
@pytest.mark.parametrize("act,jit", JIT_OR_EAGER, ids=[f"{a}-{'jit' if j else 'eager'}" for a, j in JIT_OR_EAGER])
def test_forward_mode_matches_jax_nn(act, jit, transform):
    x, bias, _ = inputs(shape=(3, 5), seed=10)
    wrap = jax.jit if jit else (lambda f: f)
    want = jax.jit(FORWARD_MODE[transform](native(act)))(x, bias)  # eager jax.nn ops take seconds
    assert_same(wrap(FORWARD_MODE[transform](ours(act)))(x, bias), want)


@pytest.mark.parametrize("name", ["x", "bias", "both"])
@pytest.mark.parametrize("transform", FORWARD_MODE)
def test_vmap_of_forward_mode(transform, name):
    """Per example, batched x, bias or both: the batching rules of every primitive forward mode uses."""
    in_axes, x, bias = vmap_inputs(name)
    x = x[..., :2, :]  # Hessians per example stay small

    def per_example(f):
        return jax.jit(jax.vmap(FORWARD_MODE[transform](f), in_axes))(x, bias)

    assert_same(per_example(ours("gelu_tanh")), per_example(native("gelu_tanh")))


def test_grad_runs_one_fused_backward_call():
    """jax.grad differentiates the tangent primitive by transposing it: the compiled program holds
    the forward and the fused backward kernel (dx and dbias in one pass) and no reduction over x,
    as it did when the op was a custom_vjp."""
    x, bias, _ = inputs((64, 32))
    grad = jax.grad(lambda a, b: jnp.sum(ours("gelu")(a, b) ** 2), argnums=(0, 1))
    compiled = jax.jit(grad).lower(x, bias).compile().as_text()
    targets = sorted(re.findall(r'custom_call_target="(\w+)"', compiled))
    assert targets == ["twinop_bias_act", "twinop_bias_act_backward"]
    assert not re.search(r"\breduce\(", compiled), compiled


def test_third_order_in_forward_mode_raises():
    x, bias, _ = inputs()
    f = lambda a: jnp.sum(ours("gelu")(a, bias))  # noqa: E731
    jax.hessian(f)(x)  # second order works
    with pytest.raises(NotImplementedError, match=re.escape(THIRD_ORDER_ERROR)):
        jax.jacfwd(jax.hessian(f))(x)
    with pytest.raises(NotImplementedError, match=re.escape(THIRD_ORDER_ERROR)):
        jax.jvp(jax.grad(lambda a: jnp.sum(jax.grad(f)(a) ** 3)), (x,), (x,))


def test_third_order_raises():
    x, bias, _ = inputs()
    f = lambda a: jnp.sum(tj.bias_act(a, bias))  # noqa: E731
    second = lambda a: jnp.sum(jax.grad(lambda c: jnp.sum(jax.grad(f)(c) ** 2))(a))  # noqa: E731
    jax.grad(lambda a: jnp.sum(jax.grad(f)(a) ** 2))(x)  # second order works
    with pytest.raises(NotImplementedError, match=re.escape(THIRD_ORDER_ERROR)):
        jax.grad(second)(x)


# vmap: (in_axes for x, bias), and the batched shapes.
VMAPS = {
    "x": ((0, None), (3, 4, 7), (7,)),
    "bias": ((None, 0), (4, 7), (3, 7)),
    "both": ((0, 0), (3, 4, 7), (3, 7)),
    "x on axis 1": ((1, None), (4, 3, 7), (7,)),
    "1-D examples": ((0, 0), (3, 7), (3, 7)),
}


def vmap_inputs(name, seed=5):
    in_axes, x_shape, bias_shape = VMAPS[name]
    return in_axes, inputs(x_shape, seed)[0], jnp.asarray(make_inputs(bias_shape, "float64", seed + 1)[0])


@pytest.mark.parametrize("name", VMAPS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_vmap(act, name):
    in_axes, x, bias = vmap_inputs(name)
    assert_same(jax.vmap(ours(act), in_axes)(x, bias), jax.vmap(native(act), in_axes)(x, bias))


@pytest.mark.parametrize("name", VMAPS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_per_example_gradients(act, name):
    """vmap(grad): each example's gradients for x and bias (dbias summed per example)."""
    in_axes, x, bias = vmap_inputs(name)

    def per_example(f):
        loss = lambda a, b: jnp.sum(jnp.sin(f(a, b)) * a)  # noqa: E731
        return jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes))(x, bias)

    assert_same(per_example(ours(act)), per_example(native(act)))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_per_example_gradient_penalty(act):
    """vmap over a second-order step: the double backward's batching rule."""
    in_axes, x, bias = vmap_inputs("both")

    def penalties(f):
        def penalty(a, b):
            g_a, g_b = jax.grad(lambda a, b: jnp.sum(f(a, b) ** 2), argnums=(0, 1))(a, b)
            return jnp.sum(g_a**2) + jnp.sum(g_b**2)
        return jax.vmap(jax.grad(penalty, argnums=(0, 1)), in_axes)(x, bias)

    assert_same(penalties(ours(act)), penalties(native(act)))


def test_nested_vmap():
    x, bias, _ = inputs((2, 3, 4, 7), seed=7)
    biases = jnp.asarray(make_inputs((3, 7), "float64", 8)[0])
    f = jax.vmap(jax.vmap(ours("silu"), (0, 0)), (0, None))
    assert_same(f(x, biases), jax.vmap(jax.vmap(native("silu"), (0, 0)), (0, None))(x, biases))


def custom_calls(fn, *args):
    """The custom-call targets in the compiled program, and whether it loops."""
    hlo = jax.jit(fn).lower(*args).as_text(dialect="hlo")
    return sorted(re.findall(r'custom_call_target="(\w+)"', hlo)), " while(" in hlo


@pytest.mark.parametrize("name", ["x", "bias", "both"])
def test_vmap_calls_each_kernel_once_without_a_loop(name):
    in_axes, x, bias = vmap_inputs(name)
    assert custom_calls(jax.vmap(ours("gelu"), in_axes), x, bias) == (["twinop_bias_act"], False)
    per_example = jax.vmap(jax.grad(lambda a, b: jnp.sum(ours("gelu")(a, b) ** 2), argnums=(0, 1)), in_axes)
    assert custom_calls(per_example, x, bias) == (["twinop_bias_act", "twinop_bias_act_backward"], False)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_batched_bias_gives_the_kernels_own_numbers(dtype):
    """A batched bias goes to the kernel as more columns, in the dtype given: the results equal,
    bit for bit, one call per example, and so does the gradient in x."""
    _, x, bias = vmap_inputs("both")
    x, bias = x.astype(dtype), bias.astype(dtype)
    batched = jax.vmap(ours("gelu"))(x, bias)
    looped = jnp.stack([ours("gelu")(x[i], bias[i]) for i in range(x.shape[0])])
    np.testing.assert_array_equal(np.asarray(batched, np.float64), np.asarray(looped, np.float64))
    grad_x = jax.grad(lambda a, b: jnp.sum(ours("gelu")(a, b).astype("float32")))
    batched = jax.vmap(grad_x)(x, bias)
    looped = jnp.stack([grad_x(x[i], bias[i]) for i in range(x.shape[0])])
    np.testing.assert_array_equal(np.asarray(batched, np.float64), np.asarray(looped, np.float64))


def test_vmap_checks_each_example():
    """Folded into rows, 1-D examples of length 7 would look like a valid [3, 7] x: each
    example is checked first, so the error is the one an unbatched call gets."""
    with pytest.raises(ValueError, match="x must have at least 1 dimension"):
        jax.vmap(ours("gelu"), (0, None))(jnp.ones(7), jnp.ones(7))
    with pytest.raises(ValueError, match="bias must have x.shape"):
        jax.vmap(ours("gelu"), (0, 0))(jnp.ones((3, 4, 7)), jnp.ones((3, 6)))
