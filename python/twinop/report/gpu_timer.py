"""The GPU timers of the report's runtime worker and of bench/bench_gpu.py and bench/bench_gpu_jax.py.

CUDA, through torch: CUDA events around a batch of back-to-back calls queued behind a spin kernel,
so that launch overhead stays out of the time. Where Python took longer to queue a batch than the
spin lasted, the GPU waited for it: the spin is lengthened and the batches timed again, and a case
still paced by Python is host-bound (its time is the host's per call, not the kernels').

JAX, which offers no events and dispatches asynchronously: the wall time of a batch of
back-to-back calls, ready when the last one is; Python's dispatch overlaps the kernels, except at
sizes where it takes longer than they do.
"""
import statistics
import time

CALLS_PER_BATCH = 10
QUEUE_AHEAD_CYCLES = 10_000_000  # a ~5 ms spin kernel: time for Python to queue a whole batch behind it
QUEUE_AHEAD_TRIES = 3  # each spin 4x the last: up to ~80 ms where Python queues a batch slower


def cuda_batch(torch, call, spin_cycles):
    """(GPU seconds per call of one batch, whether Python queued the whole batch before the spin
    ahead of it ended: if not, the GPU waited for the host within the timed span)."""
    spin, start, end = (torch.cuda.Event(enable_timing=True) for _ in range(3))
    spin.record()
    torch.cuda._sleep(spin_cycles)
    start.record()
    queuing = time.perf_counter()
    for _ in range(CALLS_PER_BATCH):
        call()
    end.record()
    queued_ms = (time.perf_counter() - queuing) * 1e3
    end.synchronize()
    return start.elapsed_time(end) * 1e-3 / CALLS_PER_BATCH, queued_ms < spin.elapsed_time(start)


def cuda_median(torch, call, batches):
    """(median over `batches` batches of GPU seconds per call, host-bound): a longer spin is tried
    where most batches were paced by Python; host-bound if they still were behind the longest."""
    for attempt in range(QUEUE_AHEAD_TRIES):
        timed = [cuda_batch(torch, call, QUEUE_AHEAD_CYCLES * 4**attempt) for _ in range(batches)]
        # The median is a GPU time when most batches are: a batch the GPU waited in only takes longer.
        host_bound = sum(covered for _, covered in timed) <= batches // 2
        if not host_bound:
            break
    return statistics.median(seconds for seconds, _ in timed), host_bound


def wall_median(call, wait, batches):
    """Median over `batches` batches of the wall seconds per call of back-to-back calls, a batch
    ending when wait() returns on its last call's result (JAX: jax.block_until_ready)."""
    per_call = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(CALLS_PER_BATCH - 1):
            call()
        wait(call())
        per_call.append((time.perf_counter() - start) / CALLS_PER_BATCH)
    return statistics.median(per_call)
