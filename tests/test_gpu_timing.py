"""The CUDA timer's logic (twinop.report.gpu_timer) on a simulated GPU (no GPU here), as
bench/bench_gpu.py and the report's CudaTimer call it: a median is a GPU time only where Python
queued each batch before the spin ahead of it ended; a longer spin is tried, and a case Python
still paces is marked host-bound (and bench_gpu.py judges no target on it)."""
import os
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("torch")
pytest.importorskip("twinop.torch", exc_type=ImportError)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import bench_gpu  # noqa: E402
from twinop.report import _runtime_worker, gpu_timer  # noqa: E402

SPIN_CYCLES_PER_MS = 2e6  # the simulated GPU's clock: 2 GHz


class SimulatedGpu:
    """One host clock and one stream, in milliseconds: each call costs the host `host_ms` to
    queue and the GPU `gpu_ms` to run, starting when both the call is queued and the GPU is free."""

    def __init__(self, host_ms, gpu_ms):
        self.host_ms, self.gpu_ms = host_ms, gpu_ms
        self.host = self.gpu_free_at = 0.0

    def enqueue(self, ms):
        self.gpu_free_at = max(self.gpu_free_at, self.host) + ms

    def call(self):
        self.host += self.host_ms
        self.enqueue(self.gpu_ms)

    def torch(self, monkeypatch):
        """A stand-in for the torch module's CUDA timing calls, on this simulated GPU; the host
        clock (time.perf_counter) follows it."""
        gpu = self

        class Event:
            def __init__(self, enable_timing):
                self.at = None

            def record(self):
                gpu.enqueue(0.0)
                self.at = gpu.gpu_free_at

            def elapsed_time(self, later):
                return later.at - self.at

            def synchronize(self):
                gpu.host = max(gpu.host, self.at)

        def synchronize():
            gpu.host = max(gpu.host, gpu.gpu_free_at)

        monkeypatch.setattr("time.perf_counter", lambda: gpu.host * 1e-3)
        return SimpleNamespace(cuda=SimpleNamespace(
            Event=Event, synchronize=synchronize, _sleep=lambda cycles: gpu.enqueue(cycles / SPIN_CYCLES_PER_MS)))


class NoInputs:
    def next(self):
        return ()


def bench_gpu_median(monkeypatch, gpu):
    monkeypatch.setattr(bench_gpu, "torch", gpu.torch(monkeypatch))
    ms, _, host_bound = bench_gpu.ms_per_call(gpu.call, NoInputs())
    return ms, host_bound


def report_median(monkeypatch, gpu):
    timer = _runtime_worker.CudaTimer(gpu.torch(monkeypatch))
    seconds, host_bound = timer.median(gpu.call, SimpleNamespace(seconds=0.01, min_reps=9, max_reps=9))
    return seconds * 1e3, host_bound


@pytest.fixture(params=[bench_gpu_median, report_median], ids=["bench_gpu", "report"])
def measure(request, monkeypatch):
    return lambda host_ms, gpu_ms: request.param(monkeypatch, SimulatedGpu(host_ms, gpu_ms))


def spin_ms(attempt):  # both timers are gpu_timer.cuda_median
    return gpu_timer.QUEUE_AHEAD_CYCLES * 4**attempt / SPIN_CYCLES_PER_MS


def test_a_batch_queued_behind_the_spin_gives_the_gpu_time(measure):
    ms, host_bound = measure(host_ms=0.05, gpu_ms=0.2)
    assert ms == pytest.approx(0.2) and not host_bound


def test_a_longer_spin_recovers_the_gpu_time_of_a_case_the_cpu_paced(measure):
    host_ms = 1.5 * spin_ms(0) / gpu_timer.CALLS_PER_BATCH  # queues a batch in 1.5 first spins
    ms, host_bound = measure(host_ms=host_ms, gpu_ms=0.03)
    assert ms == pytest.approx(0.03) and not host_bound


def test_a_case_the_cpu_paces_behind_every_spin_is_marked_host_bound(measure):
    longest = spin_ms(gpu_timer.QUEUE_AHEAD_TRIES - 1)
    ms, host_bound = measure(host_ms=2 * longest / gpu_timer.CALLS_PER_BATCH, gpu_ms=0.03)
    assert host_bound and ms > 0.03


def row(case, ms, host_bound=False, dtype="float32", shape=(4096, 1024), passes="fwd+bwd"):
    return {"dtype": dtype, "shape": list(shape), "pass": passes, "case": case, "ms": ms, "host_bound": host_bound}


def verdicts(results):
    return {target: (verdict, numbers) for target, verdict, numbers in bench_gpu.target_checks(results, [])}


def test_no_target_is_judged_on_a_host_bound_time():
    target = "float32 fwd+bwd at (4096, 1024) faster than torch.compile"
    judged = verdicts([row("twinop", 0.03), row("torch.compile", 0.18)])
    assert judged[target][0] == "PASS"
    unjudged = verdicts([row("twinop", 0.25, host_bound=True), row("torch.compile", 0.18)])
    assert unjudged[target] == ("NOT MEASURED", bench_gpu.HOST_BOUND)


def test_rows_from_before_the_check_are_judged_as_measured():
    rows = [row("twinop", 0.25), row("torch.compile", 0.18)]
    for r in rows:
        del r["host_bound"]
    assert verdicts(rows)["float32 fwd+bwd at (4096, 1024) faster than torch.compile"][0] == "MISS"


def test_each_ops_targets_read_its_own_rows():
    """RMSNorm's rows (op "rms_norm") judge RMSNorm's targets alone; rows from before RMSNorm (no
    op) are bias_act's."""
    headline = bench_gpu.HEADLINE
    bias_act = [row("copy (ceiling)", 1.0, dtype="bfloat16", shape=headline, passes="fwd"),
                row("twinop", 1.02, dtype="bfloat16", shape=headline, passes="fwd")]
    for r in bias_act:
        del r["host_bound"]  # and no "op": a file from before RMSNorm
    rms_norm = [dict(r, op="rms_norm", ms=ms) for r, ms in zip(bias_act, (1.0, 1.5))]
    judged = verdicts(bias_act + rms_norm)
    assert judged[f"bfloat16 fwd at {headline} >= 95% of copy bandwidth"][0] == "PASS"  # bfloat16: issue 25's target
    assert judged[f"rms_norm bfloat16 fwd at {headline} >= 90% of copy bandwidth"] == (
        "MISS", "twinop 1.5000 ms, copy 1.0000 ms: 66.7% of copy")
    assert judged[f"rms_norm bfloat16 fwd at {bench_gpu.WIDEST} >= 80% of copy bandwidth"][0] == "NOT MEASURED"
