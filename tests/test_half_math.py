"""The CPU kernels' float16 and bfloat16 results over every finite input value of the dtype (and
three biases, tests/half_accuracy.py), through the numpy binding: within the dtype's tolerance
everywhere, and correctly rounded no less often than PyTorch's own ops in that dtype, less one
point. Their activation math is cheaper than float32's (csrc/core/activation_math.h), accurate
for the dtype after its rounding; this is the measurement that says so."""
import numpy as np
import pytest

import half_accuracy
from cases import ACTIVATIONS

tn = pytest.importorskip("twinop.numpy", exc_type=ImportError)

DTYPES = ("float16", "bfloat16")
RESULTS = list(half_accuracy.RESULTS)
MARGIN = 0.01  # how much less often than PyTorch a result may be the correctly rounded one


def results(dtype, act):
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    x, bias = half_accuracy.inputs(dtype)
    return half_accuracy.twinop_results(tn, x, bias, act)


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_input_is_within_tolerance(dtype, act):
    exact = half_accuracy.exact_results(dtype, act)
    for name, got in results(dtype, act).items():
        outside = half_accuracy.outside_tolerance(got, exact[half_accuracy.RESULTS[name]], dtype)
        x, bias = half_accuracy.inputs(dtype)
        v = x.astype(np.float64) + bias.astype(np.float64)
        assert not outside.any(), (f"{act} {name}: {outside.sum()} results outside the {dtype} tolerance, "
                                   f"e.g. at x + bias = {v[outside][:5]}")


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_correctly_rounded_as_often_as_pytorch(dtype, act):
    pytest.importorskip("torch")
    exact = half_accuracy.exact_results(dtype, act)
    theirs = half_accuracy.torch_figures(dtype, act)
    for name, got in results(dtype, act).items():
        ours, _ = half_accuracy.figures(got, exact[half_accuracy.RESULTS[name]], dtype)
        worst = int(np.argmin(ours - theirs[name][0]))
        assert np.all(ours >= theirs[name][0] - MARGIN), (
            f"{act} {name}, bias {half_accuracy.BIASES[worst]}: correctly rounded {ours[worst]:.2%}, "
            f"PyTorch {theirs[name][0][worst]:.2%}")


def test_the_measure_catches_results_off_by_a_quarter_of_an_ulp():
    """float16 forward results moved by 2^-13 of themselves (a quarter of an ulp or less) before
    their rounding are correctly rounded more than a point less often than PyTorch's."""
    pytest.importorskip("torch")
    x, bias = half_accuracy.inputs("float16")
    exact = half_accuracy.exact_results("float16", "gelu")[0]
    moved = tn.bias_act(x.astype(np.float32), bias.astype(np.float32), "gelu") * np.float32(1 + 2.0**-13)
    fraction, _ = half_accuracy.figures(moved.astype(np.float16), exact, "float16")
    theirs, _ = half_accuracy.torch_figures("float16", "gelu")["forward y"]
    assert fraction[0] < theirs[0] - MARGIN


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_non_negative_value_is_stored_as_it_was(dtype):
    """relu(x + 0) is x for every non-negative finite value, subnormals included: the rounding on the
    way out changes nothing that needs no rounding (bfloat16's conversion instruction would read float
    subnormals as zero, csrc/core/half_cpu.cpp)."""
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        np_dtype, infinity_bits = np.dtype(ml_dtypes.bfloat16), 0x7F80
    else:
        np_dtype, infinity_bits = np.dtype(np.float16), 0x7C00
    bits = np.arange(infinity_bits, dtype=np.uint16)
    x = bits.view(np_dtype).reshape(-1, 128)  # rows of a whole number of 32-value conversion blocks
    y = tn.bias_act(x, np.zeros(128, np_dtype), "relu")
    assert np.array_equal(y.view(np.uint16).ravel(), bits)
