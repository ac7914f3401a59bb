"""bench/tf_function_cost.py times what it says: every impl computes the same outputs from its own
inputs, and the calls in one tf.function run one after another."""
import os
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("twinop.tf", exc_type=ImportError)
pytest.importorskip("ml_dtypes")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import tf_function_cost  # noqa: E402


def bits(array):
    array = np.asarray(array)
    return array.view(f"u{array.itemsize}")


@pytest.mark.parametrize("dtype", tf_function_cost.DTYPES)
def test_every_impl_computes_numpys_outputs_bit_for_bit(monkeypatch, dtype):
    monkeypatch.setattr(tf_function_cost, "SHAPE", (5, 67))
    calls = tf_function_cost.impls(dtype, ops=3)
    outputs = {name: [bits(y).copy() for y in call()] for name, call in calls.items()}
    expected = outputs.pop("numpy out=")
    assert len(expected) == 3 and not np.array_equal(expected[0], expected[1])  # each op its own input
    for name, ys in outputs.items():
        assert len(ys) == 3, name
        for y, e in zip(ys, expected):
            np.testing.assert_array_equal(y, e, err_msg=name)  # the same kernel: the same bits


def depends_on(op, other):
    """Whether `op` waits for `other` in its graph, through data or control edges."""
    seen, stack = set(), [op]
    while stack:
        current = stack.pop()
        if current is other:
            return True
        if current.name not in seen:
            seen.add(current.name)
            stack.extend([t.op for t in current.inputs] + list(current.control_inputs))
    return False


def test_the_calls_of_one_function_run_one_after_another():
    x, bias = tf.zeros((2, 3)), tf.zeros(3)
    function = tf.function(tf_function_cost.one_after_another, autograph=False)
    graph = function.get_concrete_function([x, x, x], bias).graph
    kernels = [op for op in graph.get_operations() if op.type == "Twinop>BiasAct"]
    assert len(kernels) == 3
    for before, after in zip(kernels, kernels[1:]):
        assert depends_on(after, before) and not depends_on(before, after)
