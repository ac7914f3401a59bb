"""The numpy binding against the float64 reference: every activation x dtype x shape."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import twinop.numpy as tn
from cases import ACTIVATIONS, DTYPES, SHAPES, SPECIAL_X, make_inputs, numpy_dtype, rows_of
from tolerances import assert_close
from twinop import reference


def as_array(values, dtype_name):
    return values.astype(numpy_dtype(dtype_name))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_and_backward_match_reference(act, dtype, shape):
    x, bias, dy = make_inputs(shape, dtype)
    xa, ba, dya = (as_array(a, dtype) for a in (x, bias, dy))
    y = tn.bias_act(xa, ba, act)
    dx, dbias = tn.bias_act_backward(dya, xa, ba, act)
    assert y.dtype == xa.dtype and dx.dtype == xa.dtype and dbias.dtype == ba.dtype
    want_dx, want_dbias = reference.bias_act_backward(dy, x, bias, act)
    assert_close(y, reference.bias_act(x, bias, act), dtype, what="y")
    assert_close(dx, want_dx, dtype, what="dx")
    assert_close(dbias, want_dbias, dtype, summed=rows_of(shape), what="dbias")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_non_contiguous_inputs(act):
    base, bias, _ = make_inputs((40, 40), "float32")
    base32 = base.astype(np.float32)
    for xa in (base32.T, base32[:, ::2], base32[::3]):
        assert not xa.flags.c_contiguous
        x, b = xa.astype(np.float64), bias[: xa.shape[-1]]
        ba = b.astype(np.float32)
        assert_close(tn.bias_act(xa, ba, act), reference.bias_act(x, b, act), "float32")
        dx, dbias = tn.bias_act_backward(xa, xa, ba, act)
        want_dx, want_dbias = reference.bias_act_backward(x, x, b, act)
        assert_close(dx, want_dx, "float32")
        assert_close(dbias, want_dbias, "float32", summed=x.shape[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_input(dtype):
    x = np.zeros((0, 5), numpy_dtype(dtype))
    bias = np.ones(5, numpy_dtype(dtype))
    assert tn.bias_act(x, bias).shape == (0, 5)
    dx, dbias = tn.bias_act_backward(x, x, bias)
    assert dx.shape == (0, 5)
    np.testing.assert_array_equal(dbias.astype(np.float64), np.zeros(5))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nan_and_inf_propagate_as_the_reference(act):
    bias = np.zeros(SPECIAL_X.shape[-1])
    y = tn.bias_act(SPECIAL_X, bias, act)
    dx, _ = tn.bias_act_backward(np.ones_like(SPECIAL_X), SPECIAL_X, bias, act)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(reference.bias_act(SPECIAL_X, bias, act)))
    assert_close(y, reference.bias_act(SPECIAL_X, bias, act), "float64")
    assert_close(dx, reference.bias_act_backward(np.ones_like(SPECIAL_X), SPECIAL_X, bias, act)[0], "float64")


BAD_INPUTS = [
    # (x, bias, act, exception, words the message must contain)
    (np.ones((2, 3)), np.ones(4), "gelu", ValueError, ["bias", "3"]),
    (np.ones((2, 3)), np.ones((3, 1)), "gelu", ValueError, ["bias", "1-D"]),
    (np.array(1.0), np.ones(1), "gelu", ValueError, ["x", "dimension"]),
    (np.ones((2, 3)), np.ones(3, np.float32), "gelu", TypeError, ["bias", "dtype"]),
    (np.ones((2, 3), np.int32), np.ones(3, np.int32), "gelu", TypeError, ["x", "int32"]),
    (np.ones((2, 3)), np.ones(3), "tanh", ValueError, ["act", "gelu_tanh"]),
]


@pytest.mark.parametrize("x,bias,act,error,words", BAD_INPUTS)
def test_bad_input_raises_and_leaves_inputs_unchanged(x, bias, act, error, words):
    x_before, bias_before = x.copy(), bias.copy()
    for call in (lambda: tn.bias_act(x, bias, act), lambda: tn.bias_act_backward(x, x, bias, act)):
        with pytest.raises(error) as info:
            call()
        assert all(w in str(info.value) for w in words), str(info.value)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(bias, bias_before)


def test_backward_rejects_dy_of_another_shape():
    with pytest.raises(ValueError, match="dy"):
        tn.bias_act_backward(np.ones((3, 3)), np.ones((2, 3)), np.ones(3))


def test_inputs_are_not_modified():
    x, bias, dy = make_inputs((4, 9), "float64")
    copies = [a.copy() for a in (x, bias, dy)]
    tn.bias_act(x, bias, "silu")
    tn.bias_act_backward(dy, x, bias, "silu")
    for original, copy in zip((x, bias, dy), copies):
        np.testing.assert_array_equal(original, copy)


def test_the_default_thread_count_is_the_cpus_the_process_may_use():
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    code = "import twinop.numpy as tn; print(tn.get_num_threads())"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(run.stdout) == cpus


def test_set_num_threads_refuses_less_than_one():
    with pytest.raises(ValueError, match="threads must be at least 1; got 0"):
        tn.set_num_threads(0)


@pytest.fixture
def restore_thread_count():
    before = tn.get_num_threads()
    yield
    tn.set_num_threads(before)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_every_output_is_bit_identical_for_any_thread_count(dtype, restore_thread_count):
    """(1001, 333) is cut into 10 chunks of whole rows, the last one short."""
    x, bias, dy = (as_array(a, dtype) for a in make_inputs((1001, 333), dtype, seed=4))
    results = []
    for count in (1, 2, 3, 7):
        tn.set_num_threads(count)
        results.append([tn.bias_act(x, bias, "gelu"), *tn.bias_act_backward(dy, x, bias, "gelu"),
                        *tn.bias_act_double_backward(dy, dy, x, bias, "gelu", g_bias=bias)])
    for result in results[1:]:
        for got, want in zip(result, results[0]):
            assert got.tobytes() == want.tobytes()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in Linux's /proc")
@pytest.mark.parametrize("count", [1, 2, 3])
def test_a_large_call_runs_on_the_number_of_threads_set(count, restore_thread_count):
    """While the kernel runs (GIL released), this thread counts the process's threads: the call
    adds count - 1 helpers, none of which outlives it (a joined thread leaves Linux's task list
    a moment after its join returns). Chunks of 256k elements, so the first helper is still at
    work when the next one starts, even on a loaded machine."""
    x = np.random.default_rng(0).normal(size=(4096, 4096)).astype(np.float32)
    bias = np.zeros(4096, np.float32)
    tn.set_num_threads(count)
    before = len(os.listdir("/proc/self/task"))
    expected = before + 1 + (count - 1)  # the worker and its helpers
    seen, stop = [], threading.Event()

    def calls():  # until the helpers were seen (a loaded machine may start them late) or 10 calls
        for _ in range(10):
            tn.bias_act_double_backward(x, x, x, bias, "gelu")
            if stop.is_set():
                return

    worker = threading.Thread(target=calls)
    worker.start()
    while worker.is_alive():
        seen.append(len(os.listdir("/proc/self/task")))
        if seen[-1] == expected:
            stop.set()
    worker.join()
    assert max(seen) == expected
    deadline = time.monotonic() + 5.0
    while len(os.listdir("/proc/self/task")) > before and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(os.listdir("/proc/self/task")) == before
