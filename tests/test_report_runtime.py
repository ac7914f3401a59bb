"""The runtime axis of `twinop report`: the shape of runtime.measure's result for each op (tiny
mode, from the session's one tiny report), and the worker's refusal to time a wrong result."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from twinop import reference
from twinop.report import _runtime_worker as worker
from twinop.report import runtime


@pytest.fixture(params=runtime.OPS)
def tiny(request, tiny_report):
    """(one op's CPU run from the session's tiny report, the report's progress lines)."""
    results, _, progress = tiny_report
    runs = [run for run in results["runtime"]["runs"] if run["op"] == request.param]
    assert len(runs) == 1, results["runtime"].get("errors")
    return runs[0], progress


def skip_reason(result, impl):
    """Why impl is missing: an entry of its own or of its whole framework."""
    return [s["reason"] for s in result["skipped"] if s["impl"] in (impl, runtime.IMPLS[impl])]


def test_every_impl_is_timed_or_skipped_with_a_reason(tiny):
    result, _ = tiny
    assert result["device"] == "cpu" and result["machine"]
    timed = {row["impl"] for row in result["rows"]}
    for impl in runtime.IMPLS:
        assert impl in timed or any(skip_reason(result, impl)), impl
    assert not timed & set(runtime.ABSENT[result["op"]])
    assert all(s["reason"] for s in result["skipped"])
    assert all(result["versions"][runtime.IMPLS[impl]] for impl in timed)


def test_rows_cover_the_sweep_with_consistent_units(tiny):
    result, progress = tiny
    copies = {(c["framework"], c["dtype"], tuple(c["shape"])): c for c in result["copy"]}
    sizes = runtime.SIZES[("cpu", "tiny")]
    forward_only = {"twinop-numpy-out"} if result["op"] == "rms_norm" else set()  # its backward has no out=
    for impl in {row["impl"] for row in result["rows"]}:
        got = {(row["pass"], tuple(row["shape"])) for row in result["rows"] if row["impl"] == impl}
        passes = ("fwd",) if impl in forward_only else ("fwd", "fwd+bwd")
        assert got == {(p, s) for p in passes for s in sizes}, impl
    for row in result["rows"]:
        assert row["framework"] == runtime.IMPLS[row["impl"]] and row["dtype"] == "float32"
        assert row["median_ms"] > 0
        nbytes = runtime.ELEMENTS_MOVED[row["pass"]] * math.prod(row["shape"]) * 4
        assert row["GBps"] == pytest.approx(nbytes / (row["median_ms"] * 1e-3) / 1e9, rel=1e-9)
        copy = copies[(row["framework"], row["dtype"], tuple(row["shape"]))]
        assert copy["median_ms"] > 0
        assert copy["GBps"] == pytest.approx(2 * math.prod(row["shape"]) * 4 / (copy["median_ms"] * 1e-3) / 1e9)
        assert row["copy_fraction"] == pytest.approx(row["GBps"] / copy["GBps"])
        assert ("compile_s" in row) == (row["impl"] in ("torch-compile", "twinop-tf-function", "twinop-tf-chain",
                                                        "tf-function", "tf-xla", "keras-rmsnorm", "twinop-jax-jit",
                                                        "jax-jit"))
        assert row["op"] == result["op"]
        assert row.get("chain", 1) == (runtime.CHAIN if row["impl"] == "twinop-tf-chain" else 1)
        assert row.get("compile_s", 0) >= 0
        assert ("page_faults" in row) == (row["shape"] == list(sizes[-1])) and row.get("page_faults", 0) >= 0
    assert len(progress) >= len(result["rows"])


def test_page_faults_per_call_tell_fresh_memory_from_reused():
    size = 64 * 2**20
    pages, reused = size // 4096, np.ones(size // 8)  # reused: paged in
    # bytearray rather than numpy, which asks for huge pages for a large array (512x fewer faults).
    fresh = worker.page_faults_per_call(worker.CpuTimer(), lambda: bytearray(size))
    assert fresh >= 0.9 * pages  # glibc maps a block this large afresh for each call, and unmaps it on free
    assert worker.page_faults_per_call(worker.CpuTimer(), lambda: reused.fill(2.0)) < 0.01 * pages


def test_overhead_has_both_passes_of_every_timed_impl(tiny):
    result, _ = tiny
    ran = {(row["impl"], row["pass"]) for row in result["rows"]}
    got = {(o["impl"], o["pass"]) for o in result["overhead"]}
    assert got == ran
    assert all(o["median_us"] > 0 and o["shape"] == list(runtime.OVERHEAD_SHAPE) for o in result["overhead"])


def test_rounds_time_the_speed_verdicts_impls_again_at_the_largest_size(tiny):
    result, _ = tiny
    largest = list(runtime.SIZES[("cpu", "tiny")][-1])
    head_to_head = {i for impls in runtime.HEAD_TO_HEAD[result["op"]].values() for i in impls}
    timed = {(row["impl"], row["pass"]) for row in result["rows"] if row["impl"] in head_to_head}
    assert timed and len(result["rounds"]) == runtime.ROUNDS["tiny"]
    for rows in result["rounds"]:
        assert {(r["impl"], r["pass"]) for r in rows} == timed
        assert all(r["shape"] == largest and r["median_ms"] > 0 for r in rows)


HUGE_PAGES_OF_A_NUMPY_AND_A_TORCH_BUFFER = """
import re, numpy, torch
def huge_kib():
    with open("/proc/self/smaps_rollup") as smaps:
        return int(re.search(r"AnonHugePages:\\s+(\\d+) kB", smaps.read()).group(1))
before = huge_kib(); a = numpy.ones(2**24, numpy.float32); numpy_kib = huge_kib() - before
before = huge_kib(); t = torch.ones(2**24); print(numpy_kib, huge_kib() - before)
"""


def test_rounds_put_every_bindings_memory_on_one_kind_of_page(monkeypatch):
    calls = []

    def fake_worker(framework, device, mode, progress, *options, env=None):
        calls.append((options, env))
        return {"machine": "m", "version": "1", "rows": [], "copy": [], "overhead": [], "skipped": []}

    monkeypatch.setattr(runtime, "_run_worker", fake_worker)
    runtime.measure("cpu", "tiny", lambda line: None)
    envs = [env for options, env in calls if "--head-to-head" in options]
    assert envs and all(env == envs[0] for env in envs)
    # numpy asks for huge pages for a 64 MiB array where the kernel gives them on request; torch does not.
    numpy_kib, torch_kib = map(int, subprocess.run(
        [sys.executable, "-c", HUGE_PAGES_OF_A_NUMPY_AND_A_TORCH_BUFFER], env={**os.environ, **envs[0]},
        capture_output=True, text=True, check=True).stdout.split())
    assert abs(numpy_kib - torch_kib) <= 4096  # up to a 2 MiB page at either end where every page may be huge


def page_offsets(kit, dtype):
    """Where in its 4 KiB page each array of the into-outputs calls starts."""
    x = np.zeros(runtime.SIZES[("cpu", "quick")][-1], np.float32)  # 64 MiB: a mapping of its own
    inputs = kit.inputs(x, x[0], x, dtype)
    arrays = [a for a in inputs.into_fwd_bwd if a.ndim == 2]  # x, dy, and the outputs y, dx
    return {(a.data_ptr() if hasattr(a, "data_ptr") else a.ctypes.data) % 4096 for a in arrays}


@pytest.mark.parametrize("dtype", runtime.DTYPES["quick"])
@pytest.mark.parametrize("kit", ["numpy", "torch"])
def test_inputs_and_outputs_start_alike_in_their_pages(kit, dtype):
    # A load whose address matches a recent store's in its low 12 bits waits for it (4K aliasing):
    # a binding whose inputs and outputs start at different offsets would be timed slower.
    if kit == "torch":
        pytest.importorskip("torch")
    kit = worker.NumpyKit("cpu") if kit == "numpy" else worker.TorchKit("cpu")
    assert len(page_offsets(kit, dtype)) == 1


def kit_with(fwd, fwd_bwd):
    """A numpy kit whose one impl is (fwd, fwd_bwd)."""
    kit = worker.NumpyKit("cpu")
    kit.impls = {"twinop-numpy": worker.Impl(fwd, fwd_bwd, False)}
    return kit


def test_a_wrong_result_stops_the_worker_before_timing():
    def tanh_gelu(x, b):  # the other gelu: close, but not the one asked for
        return reference.bias_act(x, b, "gelu_tanh").astype(x.dtype)

    kit = kit_with(tanh_gelu, lambda x, b, dy: (tanh_gelu(x, b), *reference.bias_act_backward(dy, x, b, "gelu")))
    with pytest.raises(worker.WrongResult, match="twinop-numpy float32 fwd: y differs"):
        worker.sweep(kit, "bias_act", "cpu", "tiny", lambda line: None)


def test_a_wrong_dbias_is_caught_too():
    def doubled_dbias(x, b, dy):
        dx, dbias = reference.bias_act_backward(dy, x, b, "gelu")
        return reference.bias_act(x, b, "gelu"), dx, 2 * dbias

    kit = kit_with(lambda x, b: reference.bias_act(x, b, "gelu"), doubled_dbias)
    with pytest.raises(worker.WrongResult, match="fwd\\+bwd: dbias differs"):
        worker.sweep(kit, "bias_act", "cpu", "tiny", lambda line: None)


def test_an_impl_that_cannot_run_is_skipped_with_its_error():
    def unsupported(*args):
        raise TypeError("no kernel for this dtype\nmore detail")

    kit = kit_with(unsupported, unsupported)
    rows, copies, skipped = worker.sweep(kit, "bias_act", "cpu", "tiny", lambda line: None)
    assert rows == [] and copies
    assert skipped == [{"impl": "twinop-numpy", "reason": "float32 fwd at 8x64: TypeError: no kernel for this dtype"}]


def test_a_failing_worker_raises_with_its_stderr():
    with pytest.raises(RuntimeError, match="runtime worker failed"):
        runtime._run_worker("no-such-framework", "cpu", "tiny", lambda line: None)


def test_check_accepts_the_reference_itself():
    kit, op = worker.NumpyKit("cpu"), worker.OPS["bias_act"]
    rng = np.random.default_rng(0)
    x, b, dy = rng.standard_normal((8, 64)), rng.standard_normal(64), rng.standard_normal((8, 64))
    worker.check(kit, op, "reference", "float64", "fwd", (x, b), reference.bias_act(x, b, "gelu"))
    y, (dx, dbias) = reference.bias_act(x, b, "gelu"), reference.bias_act_backward(dy, x, b, "gelu")
    worker.check(kit, op, "reference", "float64", "fwd+bwd", (x, b, dy), (y, dx, dbias))


def test_a_chain_is_checked_against_the_op_applied_as_often():
    """Two ops chained: y = f(f(x)), dx through both, dbias summed over both; one op's result fails."""
    kit, op = worker.NumpyKit("cpu"), worker.OPS["bias_act"]
    rng = np.random.default_rng(1)
    x, b, dy = rng.standard_normal((8, 64)), rng.standard_normal(64), rng.standard_normal((8, 64))
    h = reference.bias_act(x, b, "gelu")
    y = reference.bias_act(h, b, "gelu")
    dh, db2 = reference.bias_act_backward(dy, h, b, "gelu")
    dx, db1 = reference.bias_act_backward(dh, x, b, "gelu")
    worker.check(kit, op, "chain", "float64", "fwd+bwd", (x, b, dy), (y, dx, db1 + db2), chain=2)
    with pytest.raises(worker.WrongResult, match="chain float64 fwd: y differs"):
        worker.check(kit, op, "chain", "float64", "fwd", (x, b), h, chain=2)


def test_an_rms_norm_check_catches_a_missing_eps_and_a_wrong_dweight():
    kit, op = worker.NumpyKit("cpu"), worker.OPS["rms_norm"]
    rng = np.random.default_rng(2)
    x, w, dy = rng.standard_normal((8, 64)) * 1e-3, rng.standard_normal(64), rng.standard_normal((8, 64))
    y = reference.rms_norm(x, w, worker.EPS)[0]
    dx, dw = reference.rms_norm_backward(dy, x, w, worker.EPS)
    worker.check(kit, op, "reference", "float64", "fwd+bwd", (x, w, dy), (y, dx, dw))
    with pytest.raises(worker.WrongResult, match="fwd: y differs"):  # rstd without eps: off where x is small
        worker.check(kit, op, "no eps", "float64", "fwd", (x, w), reference.rms_norm(x, w, 0.0)[0])
    with pytest.raises(worker.WrongResult, match="fwd\\+bwd: dbias differs"):
        worker.check(kit, op, "dweight", "float64", "fwd+bwd", (x, w, dy), (y, dx, dw * 1.01))
