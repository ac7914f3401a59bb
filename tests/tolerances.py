"""The one tolerance table, per dtype name, and the comparison every test uses."""
import math

import numpy as np

# (rtol, atol) of one elementwise result against the float64 reference. Half types are
# computed in float32 and rounded once, so their bound is about one unit in the last place.
TOLERANCE = {
    "float64": (1e-10, 1e-12),
    "float32": (2e-5, 2e-6),
    "float16": (2e-3, 2e-3),
    "bfloat16": (1.6e-2, 1.6e-2),
}


# (rtol, atol) of a float64 result against the framework's own composition of the same math
# (autodiff transforms): TensorFlow's own float64 gelu is off from an exact reference by ~5e-9.
NATIVE_FLOAT64 = {"torch": (1e-10, 1e-12), "tensorflow": (1e-7, 1e-7), "jax": (1e-10, 1e-12)}


def tolerance(dtype_name, summed=1):
    """(rtol, atol) for a result that is a sum of `summed` elementwise results (dbias):
    rounding grows with the number of terms, so atol grows with sqrt(summed)."""
    rtol, atol = TOLERANCE[dtype_name]
    return rtol, atol * 8 * math.sqrt(summed) if summed > 1 else atol


def assert_close(actual, expected, dtype_name, summed=1, what="result"):
    """Compare a binding's output (any array-like, cast to float64) with the reference;
    NaN must sit where the reference has NaN, and infinities must match exactly."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    rtol, atol = tolerance(dtype_name, summed)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=f"{what} ({dtype_name})")
