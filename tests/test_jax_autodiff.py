"""JAX autodiff and batching, against the native composition act(x + b) in float64: grad and vjp,
second order (reverse over reverse, Hessians by jacrev), vmap with batched x, bias or both and
vmap(grad), without a per-example loop; and the errors where a transform is not supported."""
import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")
tj = pytest.importorskip("twinop.jax", exc_type=ImportError)

import jax.numpy as jnp  # noqa: E402

from cases import ACTIVATIONS, make_inputs  # noqa: E402
from tolerances import NATIVE_FLOAT64  # noqa: E402
from twinop.jax._second_order import THIRD_ORDER_ERROR  # noqa: E402

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
    from twinop.jax._second_order import bias_act_backward

    x, bias, dy = inputs(seed=4)
    g, g_bias = jnp.cos(x), jnp.sin(bias)

    def native_backward(dy, x, bias):
        _, vjp = jax.vjp(native(act), x, bias)
        return vjp(dy)

    def pullback(backward):
        _, vjp = jax.vjp(backward, dy, x, bias)
        return vjp((g, g_bias))

    assert_same(pullback(lambda *a: bias_act_backward(*a, act)), pullback(native_backward))


def test_forward_mode_raises_jaxs_error_for_reverse_mode_functions():
    """The op is a jax.custom_vjp (its derivative is the fused backward kernel), and JAX refuses
    forward mode on those: a TypeError, never a wrong tangent. jax.hessian is forward over reverse."""
    x, bias, _ = inputs()
    message = "can't apply forward-mode autodiff (jvp) to a custom_vjp function"
    with pytest.raises(TypeError, match=re.escape(message)):
        jax.jvp(ours("gelu"), (x, bias), (x, bias))
    with pytest.raises(TypeError, match=re.escape(message)):
        jax.jacfwd(ours("gelu"))(x, bias)
    with pytest.raises(TypeError, match=re.escape(message)):
        jax.hessian(lambda a: jnp.sum(ours("gelu")(a, bias)))(x)


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
    """A batched bias is added to x in the kernel's compute precision: the results equal, bit for
    bit, one call per example."""
    _, x, bias = vmap_inputs("both")
    x, bias = x.astype(dtype), bias.astype(dtype)
    batched = jax.vmap(ours("gelu"))(x, bias)
    looped = jnp.stack([ours("gelu")(x[i], bias[i]) for i in range(x.shape[0])])
    np.testing.assert_array_equal(np.asarray(batched, np.float64), np.asarray(looped, np.float64))


def test_vmap_checks_each_example():
    """Folded into rows, 1-D examples of length 7 would look like a valid [3, 7] x: each
    example is checked first, so the error is the one an unbatched call gets."""
    with pytest.raises(ValueError, match="x must have at least 1 dimension"):
        jax.vmap(ours("gelu"), (0, None))(jnp.ones(7), jnp.ones(7))
    with pytest.raises(ValueError, match="bias must have x.shape"):
        jax.vmap(ours("gelu"), (0, 0))(jnp.ones((3, 4, 7)), jnp.ones((3, 6)))
