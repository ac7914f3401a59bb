"""Eight threads calling each binding at once, every call of tests/bindings.py on their own
inputs (shape, dtype, activation), give the bits of the same calls made one after another:
PyTorch with its intra-op pool on, numpy with the GIL released, TensorFlow eager and
tf.function. The inputs are big enough (66k-160k elements) for the kernels to cut them into
several chunks, run on the framework's threads while other threads do the same."""
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

import bindings
from cases import WEIGHT_DTYPES, numpy_dtype
from op_specs import OPS, attrs

THREADS = 8
ROUNDS = 3


def thread_work(binding, k):
    """Thread k's inputs (as the binding's tensors: every input any op takes) and its k."""
    rng = np.random.default_rng(k)
    dtype = ("float32", "bfloat16", "float64", "float16")[k % 4]
    rows, cols = 200 + 40 * k, 331
    shapes = {name: ((rows, cols) if kind == "x" else (cols,)) for op in OPS.values() for name, kind in op.inputs.items()}
    dtypes = {name: dtype for name in shapes}
    dtypes["weight"] = WEIGHT_DTYPES[dtype][k // 4 % len(WEIGHT_DTYPES[dtype])]  # mixed precision for some
    inputs = {name: binding.tensor(rng.normal(0.0, 2.0, shape).astype(numpy_dtype(dtypes[name])).astype(float),
                                   dtypes[name]) for name, shape in shapes.items()}
    return SimpleNamespace(**inputs), k


def run_every_call(binding, inputs, k):
    """{call name: the bits of each output}, each call with the k-th attributes of its op."""
    return {name: [binding.bits(t) for t in call.fn(inputs, attrs(call.op, k))] for name, call in binding.calls.items()}


def run_in_threads(work, count):
    """Runs work(k) for k < count, all at once, and returns their results (or raises the first error)."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def worker(k):
        try:
            barrier.wait()
            results[k] = work(k)
        except BaseException as e:  # noqa: BLE001  (re-raised in the test's thread)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def torch_pool_on():
    """PyTorch's intra-op pool with 4 threads, whatever the machine's default."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("binding_name", bindings.BINDINGS)
def test_eight_threads_give_the_serial_bits(binding_name, request):
    binding = bindings.load(binding_name)
    if binding_name == "torch":
        request.getfixturevalue("torch_pool_on")
    work = [thread_work(binding, k) for k in range(THREADS)]
    serial = [run_every_call(binding, inputs, k) for inputs, k in work]
    concurrent = run_in_threads(lambda k: [run_every_call(binding, *work[k]) for _ in range(ROUNDS)], THREADS)
    for k in range(THREADS):
        for round_results in concurrent[k]:
            for name, bits in round_results.items():
                assert bits == serial[k][name], f"thread {k}: {name} differs from the serial call"


def test_numpy_releases_the_gil_inside_the_kernel():
    """While one thread is inside the numpy binding's kernel (~0.2 s), another runs Python code:
    it is never held up for half that time (it would be, all of it, if the GIL were held)."""
    tn = bindings.load("numpy").tn
    x = np.random.default_rng(0).normal(size=(4096, 4096)).astype(np.float32)
    bias = np.zeros(4096, np.float32)
    span = {}

    def kernel():
        span["start"] = time.perf_counter()
        tn.bias_act_double_backward(x, x, x, bias, "gelu_tanh")
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=kernel)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    inside = [span["start"]] + [t for t in ticks if span["start"] < t < span["end"]] + [span["end"]]
    longest_wait = max(b - a for a, b in zip(inside, inside[1:]))
    assert longest_wait < 0.5 * (span["end"] - span["start"]), (longest_wait, span["end"] - span["start"])
