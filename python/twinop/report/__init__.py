"""`twinop report`: measures the five axes (boilerplate, type/device support, build friction,
runtime, distributed), judges the common claims on them, and writes REPORT.md, results.json and
PNG plots."""
import datetime
import importlib.metadata
import json
import os
import platform
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .build_friction import BINDINGS

AXES = ("boilerplate", "support", "build", "runtime", "distributed")
ALL_BUILDS = tuple(BINDINGS)


class Progress:
    """A bar of finished stages on stderr, with a line per stage. On a terminal each step rewrites
    one status line; in a log every step gets its own line."""

    def __init__(self, stages, stream=sys.stderr):
        self.stages, self.done, self.start, self.stream = stages, 0, time.perf_counter(), stream
        self.live = stream.isatty()
        self.lock = threading.Lock()  # builds report from several threads

    def _line(self, message):
        bar = "#" * self.done + "-" * (self.stages - self.done)
        return f"[{bar}] {time.perf_counter() - self.start:4.0f} s  {message}"

    def __call__(self, message):
        with self.lock:
            if self.live:
                print(f"\r\033[K{self._line(message)[:150]}", end="", file=self.stream, flush=True)
            else:
                print(self._line(message), file=self.stream, flush=True)

    def stage_done(self, name):
        with self.lock:
            self.done += 1
            print(("\r\033[K" if self.live else "") + self._line(f"done: {name}"), file=self.stream, flush=True)


def machine():
    """'<CPU model>, <n> cores' from /proc/cpuinfo where there is one."""
    model = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), model)
    return f"{model}, {os.cpu_count()} cores"


def versions():
    """Installed versions, read from package metadata so that no framework is imported here."""
    found = {}
    for name, dists in {"torch": ("torch",), "tensorflow": ("tensorflow", "tensorflow-cpu"), "jax": ("jax",),
                        "numpy": ("numpy",)}.items():
        for dist in dists:
            try:
                found[name] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def source_dir(given=None):
    """The checkout to count and build: --source, else the one this install was built from."""
    if given:
        return os.path.abspath(given)
    from .. import _build_info

    return getattr(_build_info, "SOURCE_DIR", "") or None


def resolve_devices(device):
    """auto = the CPU, plus CUDA where torch sees a GPU (the runtime times CUDA through torch)."""
    if device != "auto":
        return [device]
    from .support import cuda_available

    return ["cpu", "cuda"] if cuda_available() else ["cpu"]


def measure_runtime(devices, mode, progress):
    try:
        from . import runtime
    except ImportError as error:
        return {"available": False, "reason": f"the runtime module is missing ({error})"}
    results = {"available": True, "runs": [], "errors": {}}
    for device in devices:
        for op in runtime.OPS:  # a run per device and op
            try:
                results["runs"].append(runtime.measure(device, mode, progress, op))
            except RuntimeError as error:  # a failed worker: the report goes on, and says so
                results["errors"][f"{device} {op}"] = str(error).strip().splitlines()[0]
    return results


def run_report(out_dir, device="auto", mode="quick", source=None, axes=AXES, builds=ALL_BUILDS, progress=None):
    """Measures `axes`, writes out_dir/{REPORT.md, results.json, *.png}, returns the results dict.
    mode: "quick", "full", or "tiny" (the smallest sizes, the axes overlapping: for tests). builds: the bindings the build axis compiles."""
    from . import boilerplate, build_friction, distributed, render, support, verdicts

    started = time.perf_counter()
    progress = progress or Progress(len(axes) + 1)
    os.makedirs(out_dir, exist_ok=True)
    src = source_dir(source)
    devices = resolve_devices(device)
    results = {}
    with_cuda = "cuda" in devices and build_friction.cuda_compiler_available()  # the system's nvcc or pip's
    if "boilerplate" in axes:
        results["boilerplate"] = boilerplate.measure(src)
        progress.stage_done("boilerplate")
    # What may overlap: in full mode nothing (clean wall times); in quick mode the support probes
    # and the builds (whose CPU times hold), the runtime alone after them; in tiny mode everything.
    jobs = {
        "support": lambda: support.measure(progress, src, with_cuda=mode != "tiny"),
        "build": lambda: build_friction.measure(src, builds, with_cuda, mode != "full", progress),
        "runtime": lambda: measure_runtime(devices, mode, progress),
        "distributed": lambda: distributed.measure(mode, progress),
    }
    overlapping = [a for a in jobs if a in axes and (a != "runtime" or mode == "tiny")]
    with ThreadPoolExecutor(1 if mode == "full" else len(overlapping) or 1) as pool:
        running = {axis: pool.submit(jobs[axis]) for axis in overlapping}
        for axis, job in running.items():
            results[axis] = job.result()
            progress.stage_done(axis)
    if "runtime" in axes and "runtime" not in results:
        results["runtime"] = jobs["runtime"]()
        progress.stage_done("runtime")
    results["verdicts"] = verdicts.all_verdicts(results)
    results["meta"] = {
        "command": "twinop " + ("report" if len(axes) > 1 else "bench") + f" --{mode} --device {device}",
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "python": platform.python_version(), "versions": versions(), "mode": mode,
        "devices": devices, "axes": list(axes), "source_dir": src, "elapsed_s": time.perf_counter() - started,
        "environment": {"prefix": sys.prefix, "base_prefix": sys.base_prefix, "source_dir": src},
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:  # first: the measurements outlive a failed page
        json.dump(results, f, indent=1)
    try:
        from . import plots
    except ImportError as error:  # matplotlib is in requirements.txt, not in twinop's dependencies
        progress(f"no plots: {error}")
        images = {}
    else:
        images = plots.all_plots(results, out_dir)
    with open(os.path.join(out_dir, "REPORT.md"), "w") as f:
        f.write(render.report(results, {name for names in images.values() for name in names}))
    progress.stage_done(f"wrote {os.path.join(out_dir, 'REPORT.md')}")
    return results
