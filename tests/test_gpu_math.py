"""The GPU's float activation math (csrc/core/activation_math.h: __expf, __fdividef and GELU from one
exponential) against the float64 reference, on the host, so it is checked where no GPU is:
tests/gpu_math_twin.cpp compiles the same code with twins of the two intrinsics, and every
combination of their documented error bounds is swept over float32 inputs: every binade of
both signs up to 1e18 (subnormals included), a dense grid where the functions bend, the
exponential's overflow and underflow, +-0, +-Inf and NaN. Each result must sit within half the
float32 tolerance (tests/tolerances.py), the other half left for the roundings the GPU fuses.
Past 1e18, v^2 and v^4 terms overflow float before the vanishing factor that multiplies them
(PyTorch's own float32 GELU derivatives give NaN from 1e19 on, too).

The math for float16 and bfloat16 results (cheaper for bfloat16) is checked as the CPU's is in
tests/test_half_math.py: over every finite input value of the dtype and three biases, rounded to
the dtype as the kernels round it, within the dtype's tolerance everywhere and correctly rounded
no less often than PyTorch's own ops less one point, at every combination of the bounds."""
import ctypes
import importlib.util
import itertools
import os
import shutil
import subprocess

import numpy as np
import pytest

import half_accuracy
from cases import ACTIVATIONS
from tolerances import TOLERANCE
from twinop import reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPILER = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
ORDERS = {0: reference.FORWARD, 1: reference.DERIVATIVE, 2: reference.SECOND_DERIVATIVE}
BOUNDS = list(itertools.product((-1, 0, 1), repeat=2))  # (exp, recip): an end of each error bound, or exact
MARGIN = 0.5

pytestmark = pytest.mark.skipif(COMPILER is None, reason="needs a C++ compiler")


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    library = tmp_path_factory.mktemp("twin") / "gpu_math_twin.so"
    subprocess.run([COMPILER, "-std=c++17", "-O2", "-ffp-contract=off", "-shared", "-fPIC",
                    "-I", os.path.join(ROOT, "csrc", "core"), os.path.join(ROOT, "tests", "gpu_math_twin.cpp"),
                    "-o", str(library)], check=True)
    lib = ctypes.CDLL(str(library))
    lib.twin_set_bounds.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.twin_eval.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_int64]
    lib.twin_eval.restype = ctypes.c_int
    return lib


SIGNIFICANT_BITS = {"float32": 24, "float16": 11, "bfloat16": 8}


def evaluate(lib, act, order, v, bounds, dtype_name="float32"):
    """The twin's results at float32 inputs v, for results of dtype_name (before their rounding)."""
    lib.twin_set_bounds(*bounds)
    out = np.empty_like(v)
    assert lib.twin_eval(act.encode(), order, SIGNIFICANT_BITS[dtype_name], v.ctypes.data, out.ctypes.data,
                         v.size) == 0
    return out


LARGEST = 1e18


def sweep():
    """float32 inputs: 64 mantissas in every binade up to LARGEST, both signs, a grid of step 2^-12 over
    [-20, 20], a grid of step 2^-6 over [-120, 120] (the exponential's overflow and underflow),
    and the special values."""
    rng = np.random.default_rng(0)
    exponents, mantissas = np.meshgrid(np.arange(255, dtype=np.uint32), np.arange(64, dtype=np.uint32))
    bits = (exponents.ravel() << 23) | (mantissas.ravel() << 17) | rng.integers(0, 1 << 17, exponents.size, dtype=np.uint32)
    binades = bits.view(np.float32)
    specials = np.array([0.0, np.inf, np.nan, LARGEST, np.finfo(np.float32).tiny,
                         np.finfo(np.float32).smallest_subnormal], dtype=np.float32)
    v = np.concatenate([binades[binades <= LARGEST], np.arange(-20, 20, 2.0**-12), np.arange(-120, 120, 2.0**-6),
                        specials]).astype(np.float32)
    return np.concatenate([v, -v])


SWEEP = sweep()


def worst_error(got, expected, dtype_name="float32"):
    """The largest |error| / (atol + rtol |expected|), and where; NaN and Inf must match exactly."""
    rtol, atol = TOLERANCE[dtype_name]
    nan_mismatch = np.isnan(got) != np.isnan(expected)
    inf_mismatch = np.isinf(expected) & (got != expected)
    finite = np.isfinite(expected) & ~np.isnan(got)
    ratio = np.zeros_like(expected)
    with np.errstate(invalid="ignore", over="ignore"):
        ratio[finite] = np.abs(got[finite] - expected[finite]) / (atol + rtol * np.abs(expected[finite]))
    ratio[nan_mismatch | inf_mismatch | (np.isinf(got) & np.isfinite(expected))] = np.inf
    i = int(np.argmax(ratio))
    return ratio[i], i


@pytest.mark.parametrize("order", ORDERS, ids=["value", "derivative", "second_derivative"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gpu_float_math_within_tolerance(twin, act, order):
    v = SWEEP
    with np.errstate(all="ignore"):
        expected = ORDERS[order][act](v.astype(np.float64)).astype(np.float64)
    for bounds in BOUNDS:
        got = evaluate(twin, act, order, v, bounds).astype(np.float64)
        ratio, i = worst_error(got, expected)
        assert ratio <= MARGIN, (f"{act} order {order}, intrinsic bounds {bounds}: at v = {v[i]!r} got {got[i]!r}, "
                                 f"float64 {expected[i]!r}: {ratio:.3f} of the float32 tolerance")


def test_the_twin_reaches_both_ends_of_the_bounds(twin):
    """The bounds move results: otherwise the sweep above would test one point of each bound."""
    v = np.array([-30.0, -20.0], dtype=np.float32)  # silu(v) = v / (1 + e^-v): both errors show
    exact = evaluate(twin, "silu", 0, v, (0, 0))
    for bounds in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        assert np.all(evaluate(twin, "silu", 0, v, bounds) != exact), bounds


def test_the_sweep_catches_a_wrong_function(twin):
    """The comparison fails on a function that is off by one part in 10^4."""
    v = SWEEP[np.isfinite(SWEEP)]
    with np.errstate(all="ignore"):
        expected = reference.FORWARD["gelu"](v.astype(np.float64)).astype(np.float64)
    got = evaluate(twin, "gelu", 0, v, (0, 0)).astype(np.float64) * (1 + 1e-4)
    assert worst_error(got, expected)[0] > 1


HALF_RESULTS = {0: "forward y", 1: "backward dx", 2: "double backward d_x"}  # with dy = g = 1, as the kernels


@pytest.mark.parametrize("order", ORDERS, ids=["value", "derivative", "second_derivative"])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gpu_half_math_within_tolerance_and_rounded_as_often_as_pytorch(twin, dtype, act, order):
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    x, bias = half_accuracy.inputs(dtype)
    v = x.astype(np.float32) + bias.astype(np.float32)  # the kernels' v, in float
    exact = half_accuracy.exact_results(dtype, act)[order]
    with_torch = importlib.util.find_spec("torch") is not None  # without it, the tolerance alone
    theirs = half_accuracy.torch_figures(dtype, act)[HALF_RESULTS[order]][0] if with_torch else None
    for bounds in BOUNDS:
        got = evaluate(twin, act, order, v, bounds, dtype).astype(x.dtype)  # rounded to nearest, as the kernels
        outside = half_accuracy.outside_tolerance(got, exact, dtype)
        assert not outside.any(), f"bounds {bounds}: outside the {dtype} tolerance at v = {v[outside][:5]}"
        if theirs is not None:
            ours, _ = half_accuracy.figures(got, exact, dtype)
            assert np.all(ours >= theirs - 0.01), f"bounds {bounds}: correctly rounded {ours}, PyTorch {theirs}"


# A new activation that calls a function with no float version on the GPU (erf_ and gaussian_ take a
# precision only in double there), instantiated for float: it must fail to compile, not call the double.
NEW_ACTIVATION = """
#include "activation_math.h"
namespace twinop::math {
struct NewActivation {
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T value(T v, P precision = {}) { return %s(v, precision); }
};
%s
}  // namespace twinop::math
"""
HOST_USE = "template %s NewActivation::value(%s, Float32Precision);"
DEVICE_USE = "__global__ void use(%s* v) { *v = NewActivation::value(*v); }"


def compile_new_activation(tmp_path, function, compute_type, on_gpu, with_nvcc):
    """Compiles NEW_ACTIVATION calling `function` on `compute_type`, with the GPU's float math or the CPU's;
    returns the compiler's result."""
    use = (DEVICE_USE if with_nvcc else HOST_USE % (compute_type, "%s")) % compute_type
    source = tmp_path / ("new_activation.cu" if with_nvcc else "new_activation.cpp")
    source.write_text(NEW_ACTIVATION % (function, use))
    include = ["-I", os.path.join(ROOT, "csrc", "core")]
    if with_nvcc:  # device code: __CUDA_ARCH__ is defined, the GPU's float math is the one compiled
        command = ["nvcc", "-std=c++17", "-arch=sm_80", "-c", str(source), "-o", str(tmp_path / "new.o"), *include]
    else:
        command = [COMPILER, "-std=c++17", "-fsyntax-only", str(source), *include]
        command += ["-DTWINOP_GPU_MATH_ON_HOST"] if on_gpu else []
    return subprocess.run(command, capture_output=True, text=True)


@pytest.mark.parametrize("function", ["erf_", "gaussian_"])
def test_a_float_function_missing_on_the_gpu_fails_to_compile(tmp_path, function):
    refused = compile_new_activation(tmp_path, function, "float", on_gpu=True, with_nvcc=False)
    assert refused.returncode != 0 and function in refused.stderr, refused.stderr
    # The same activation builds in double, and in float with the CPU's math, which has both.
    for compute_type, on_gpu in (("double", True), ("float", False)):
        built = compile_new_activation(tmp_path, function, compute_type, on_gpu, with_nvcc=False)
        assert built.returncode == 0, built.stderr


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")
def test_a_float_function_missing_on_the_gpu_fails_to_compile_with_nvcc(tmp_path):
    refused = compile_new_activation(tmp_path, "erf_", "float", on_gpu=True, with_nvcc=True)
    assert refused.returncode != 0 and "erf_" in refused.stderr, refused.stderr
    built = compile_new_activation(tmp_path, "erf_", "double", on_gpu=True, with_nvcc=True)
    assert built.returncode == 0, built.stderr
