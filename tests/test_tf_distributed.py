"""twinop's TensorFlow op under tf.distribute.MirroredStrategy on 2 logical CPUs (a custom loop
and Keras fit, equal to one device) and under TF DTensor (refused: TF has no public way to give
a custom op a layout rule). Measured by the report's worker (twinop/report/_distributed_tf.py)
in a subprocess: the logical devices must be set before TF's runtime starts."""
import copy

import pytest

from twinop.report import distributed

pytest.importorskip("tensorflow")
pytest.importorskip("twinop.tf", exc_type=ImportError)

TOLERANCE = 1e-12  # float64


@pytest.fixture(scope="module")
def measured():
    result = distributed.run_worker("tensorflow")
    assert "worker_error" not in result, result["worker_error"]
    return result


@pytest.mark.parametrize("training", ["custom_loop", "keras_fit"])
def test_mirrored_training_equals_one_device(measured, training):
    run = measured["mirrored"][training]
    assert len(run["losses"]) == len(run["one_device_losses"]) > 1
    assert max(abs(a - b) for a, b in zip(run["losses"], run["one_device_losses"])) < TOLERANCE
    assert run["weights_difference"] < TOLERANCE


def test_mirrored_runs_the_ops_on_each_replica(measured):
    mirrored = measured["mirrored"]
    loop = mirrored["custom_loop"]
    assert mirrored["replicas"] == 2
    assert loop["twinop_ops"] == [f"Twinop>{op} on /job:localhost/replica:0/task:0/device:CPU:{i}"
                                  for op in ("BiasAct", "BiasActGrad") for i in (0, 1)]
    assert loop["bias_variable"] == "MirroredVariable" and loop["bias_copies_difference"] == 0.0


def test_dtensor_refuses_the_op(measured):
    """A limit of TF's, stated: DTensor's layout propagation has no entry for custom ops."""
    d = measured["dtensor"]
    assert d["twinop tf.function"]["error"] == ("UnknownError: 'tf.Twinop>BiasAct' op does not implement "
                                                "layout propagation")
    assert d["twinop eager"]["error"].startswith("UnimplementedError: Trying to copy a non-single-device")
    assert d["tf.nn.gelu(x + b) tf.function"] == {"layout": "['batch', 'unsharded']"}


def test_report_reads_the_verdicts_from_the_measurements(measured):
    assert [row[1:3] for row in distributed._tf_rows(measured)] == [
        ["MirroredStrategy, custom loop", "works"], ["MirroredStrategy, Keras fit", "works"], ["DTensor", "clear error"]]
    wrong = copy.deepcopy(measured)
    wrong["mirrored"]["keras_fit"]["losses"][-1] += 1e-3
    assert distributed._tf_rows(wrong)[1][2] == "silently wrong"
