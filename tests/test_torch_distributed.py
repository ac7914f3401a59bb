"""twinop's PyTorch op under PyTorch's distributed engines, on 2 gloo processes on 127.0.0.1, in
float64 against the same computation on whole tensors in one process: DDP and FSDP2; DTensor with
the sharding rules, each placement through both autograd routes, with its collectives; the
second-order penalty on dx alone; tensor parallel, eager and under torch.compile. Measured by the
report's worker (twinop/report/_distributed_torch.py) in a subprocess, which spawns the ranks."""
import copy
import os
import subprocess
import sys
import textwrap

import pytest

from twinop.report import distributed

torch = pytest.importorskip("torch")
tt = pytest.importorskip("twinop.torch", exc_type=ImportError)

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()), reason="needs torch.distributed with gloo")

TOLERANCE = 1e-12  # float64
ROUTES = ("twinop.torch.bias_act", "torch.ops.twinop.bias_act")
PLACED = {  # case -> placements of (y, dx, dbias)
    "rows": ("S(0)", "S(0)", "P(sum)"),
    "sequence": ("S(1)", "S(1)", "P(sum)"),
    "features": ("S(1)", "S(1)", "S(0)"),
    "rows, bias sharded": ("S(0)", "S(0)", "P(sum)"),
}


@pytest.fixture(scope="module")
def measured():
    result = distributed.run_worker("torch", compiled=True)
    assert "worker_error" not in result, result["worker_error"]
    return result


def test_the_worker_ran_the_library_asked_for(measured):
    """TWINOP_TORCH_ABI=stable runs this file on the stable-ABI library."""
    assert measured["abi"] == (os.environ.get("TWINOP_TORCH_ABI") or tt.ABI)


def test_dtensor_without_the_rules_names_the_op(measured):
    """import twinop.torch does not import torch.distributed.tensor (~0.6 s), so the rules wait
    for register_dtensor_sharding(); before it, DTensor's own error."""
    unregistered = measured["unregistered"]
    assert not unregistered["tensor_imported_before_twinop"] and not unregistered["registered_at_import"]
    assert unregistered["error"] == ("NotImplementedError: Operator twinop.bias_act.default does not have a sharding "
                                     "strategy registered.")
    assert unregistered["registered"] and unregistered["second_call_kept_the_rule"]


def test_rules_are_registered_at_import_after_torch_distributed_tensor():
    code = textwrap.dedent("""
        import torch.distributed.tensor
        import twinop.torch
        from torch.distributed.tensor import DTensor
        strategies = DTensor._op_dispatcher.sharding_propagator.op_strategy_funcs
        print(all(getattr(torch.ops.twinop, name).default in strategies
                  for name in ("bias_act", "bias_act_backward", "bias_act_double_backward", "rms_norm",
                               "add_rms_norm", "rms_norm_backward", "add_rms_norm_backward")))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1:] == ["True"], done.stderr[-2000:]


@pytest.mark.parametrize("engine", ["ddp", "fsdp2"])
def test_data_parallel_training_equals_one_process(measured, engine):
    """DDP and FSDP2 hand the op plain local tensors: the parameters after 3 steps are one process's."""
    assert measured["data_parallel"]["twinop BiasAct"][f"{engine}_params_error"] < TOLERANCE


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", PLACED)
def test_dtensor_matches_whole_tensors(measured, case, route):
    result = measured["placements"][f"{case} / {route}"]
    assert max(result["errors"]) < TOLERANCE
    assert (result["y"], result["dx"], result["dbias"]) == PLACED[case]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", PLACED)
def test_dtensor_collectives(measured, case, route):
    """None inside the op where bias is sharded as x's features are (dbias is left a Partial sum);
    where not, DTensor gathers the bias once a pass."""
    result = measured["placements"][f"{case} / {route}"]
    expected = {} if result["aligned"] else {"all_gather_into_tensor": 1}
    assert result["forward_collectives"] == expected and result["backward_collectives"] == expected


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("penalty", ["penalty on dx", "penalty on dx and dbias"])
def test_dtensor_second_order(measured, penalty, route):
    """The penalty on dx alone leaves dbias unused: autograd's zero gradient for it was a plain
    tensor, which the op refused among DTensors ("got mixed torch.Tensor and DTensor")."""
    result = measured["second_order"][f"{penalty} / {route}"]
    assert "error" not in result, result["error"]
    assert max(result["errors"]) < TOLERANCE


RMS_NORM_PLACED = {"rows": ("S(0)", "S(0)", "P(sum)"), "sequence": ("S(1)", "S(1)", "P(sum)")}
RMS_NORM_ROUTES = ("twinop.torch.rms_norm", "torch.ops.twinop.rms_norm", "twinop.torch.add_rms_norm")


@pytest.mark.parametrize("route", RMS_NORM_ROUTES)
@pytest.mark.parametrize("case", RMS_NORM_PLACED)
def test_dtensor_rms_norm_runs_on_whole_rows_without_collectives(measured, case, route):
    result = measured["rms_norm"][f"{case} / {route}"]
    assert max(result["errors"]) < TOLERANCE
    assert (result["y"], result["dx"], result["dweight"]) == RMS_NORM_PLACED[case]
    assert result["forward_collectives"] == {} and result["backward_collectives"] == {}


@pytest.mark.parametrize("route", RMS_NORM_ROUTES)
def test_dtensor_rms_norm_gathers_rows_sharded_by_feature(measured, route):
    """RMSNorm reduces over the features: its rule has no feature-sharded strategy, so DTensor
    gathers x's rows first, and the result is right."""
    result = measured["rms_norm"][f"features / {route}"]
    assert max(result["errors"]) < TOLERANCE
    assert sum(result["forward_collectives"].values()) >= 1


@pytest.mark.parametrize("route", RMS_NORM_ROUTES[:2])
def test_dtensor_rms_norm_second_order(measured, route):
    result = measured["rms_norm"][f"penalty on dx / {route}"]
    assert "error" not in result, result["error"]
    assert max(result["errors"]) < TOLERANCE


def test_tensor_parallel_step_equals_one_process(measured):
    """Colwise Linear -> BiasAct (bias Shard(0)) -> Rowwise Linear: one collective a step, the
    Rowwise layer's all_reduce; the same step under torch.compile computes eager's numbers."""
    tp = measured["tensor_parallel"]
    assert tp["params_error"] < TOLERANCE
    assert tp["step_collectives"] == {"all_reduce": 1}
    assert tp["compiled_vs_eager_error"] < TOLERANCE


def test_local_map_without_in_grad_placements_is_wrong(measured):
    """A PyTorch trap the README names: local_map labels dbias with bias's own placement
    (Replicate) unless told it is a Partial sum."""
    lm = measured["local_map"]
    assert lm["default"]["dbias"] == "R" and lm["default"]["dbias_error"] > 0.1
    assert lm["in_grad_placements=Partial()"]["dbias"] == "P(sum)"
    assert lm["in_grad_placements=Partial()"]["dbias_error"] < TOLERANCE


def test_report_reads_the_verdicts_from_the_measurements(measured):
    verdicts = {row[1]: row[2] for row in distributed._torch_rows(measured)}
    assert verdicts == {
        "DDP": "works", "FSDP2 (fully_shard)": "works", "DTensor, before register_dtensor_sharding()": "clear error",
        "DTensor, with twinop's sharding rules": "partitioned", "DTensor, second order (gradient penalty)": "works",
        "tensor parallel: Colwise Linear → BiasAct (bias Shard(0)) → Rowwise Linear": "works",
        "local_map (no rule), in_grad_placements left out": "silently wrong",
        "rms_norm: DTensor, with twinop's sharding rules": "partitioned",
        "rms_norm: DTensor, second order (penalty on dx)": "works"}
    wrong = copy.deepcopy(measured)
    wrong["rms_norm"]["rows / twinop.torch.rms_norm"]["errors"][2] = 3.0
    wrong["rms_norm"]["penalty on dx / twinop.torch.rms_norm"] = {"error": "RuntimeError: got mixed"}
    wrong["placements"]["rows / twinop.torch.bias_act"]["errors"][2] = 3.0
    wrong["second_order"]["penalty on dx / twinop.torch.bias_act"] = {"error": "RuntimeError: got mixed"}
    verdicts = {row[1]: row[2] for row in distributed._torch_rows(wrong)}
    assert verdicts["DTensor, with twinop's sharding rules"] == "silently wrong"
    assert verdicts["DTensor, second order (gradient penalty)"] == "clear error"
    assert verdicts["rms_norm: DTensor, with twinop's sharding rules"] == "silently wrong"
    assert verdicts["rms_norm: DTensor, second order (penalty on dx)"] == "clear error"
