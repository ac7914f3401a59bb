"""The runtime axis of `twinop report`: what is measured, and one worker process per framework.

Each framework is timed in its own process (python -m twinop.report._runtime_worker), so no
framework's threads, allocator or compiled code disturbs another's; this module spawns them
one after another (two would share the cores) and merges their JSON; on the CPU it then times the
speed verdict's impls again, in rounds of such processes (HEAD_TO_HEAD).
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

# The ops timed, one of each class: an elementwise op and a row reduction; _runtime_worker.OPS holds
# each op's reference and impls.
OPS = ("bias_act", "rms_norm")
# Every implementation of an op the report times, by its role (twinop's bindings and each framework's
# own ops: y = gelu(x + b), y = rms_norm(x) * w), and the framework whose process runs it.
IMPLS = {
    "twinop-torch": "torch",
    "twinop-torch-out": "torch",
    "twinop-torch-thp": "torch",
    "torch-eager": "torch",
    "torch-eager-thp": "torch",
    "torch-compile": "torch",
    "twinop-tf-eager": "tensorflow",
    "twinop-tf-function": "tensorflow",
    "twinop-tf-chain": "tensorflow",
    "tf-eager": "tensorflow",
    "tf-function": "tensorflow",
    "tf-xla": "tensorflow",
    "keras-rmsnorm": "tensorflow",  # rms_norm only: what keras.layers.RMSNormalization's call runs
    "twinop-numpy": "numpy",
    "twinop-numpy-out": "numpy",
    "twinop-jax-eager": "jax",
    "twinop-jax-jit": "jax",
    "jax-jit": "jax",
}
# Per op, each binding as a user calls it -> the same kernel writing into outputs allocated once
# (out=). None: the binding has no out= (twinop.torch.rms_norm has none); the page faults per call
# say whether its allocator keeps its memory (TensorFlow's, with its oneDNN options on) or gives each
# output fresh memory (JAX's CPU client, PyTorch's for blocks of 32 MiB and more).
PREALLOCATED = {
    "bias_act": {"twinop-torch": "twinop-torch-out", "twinop-tf-function": None, "twinop-numpy": "twinop-numpy-out",
                 "twinop-jax-jit": None},
    "rms_norm": {"twinop-torch": None, "twinop-tf-function": None, "twinop-numpy": "twinop-numpy-out",
                 "twinop-jax-jit": None},
}
# The roles an op has no impl for, and why (each run lists them among its skipped impls).
ABSENT = {"bias_act": {"keras-rmsnorm": "rms_norm only"},
          "rms_norm": {"twinop-torch-out": "twinop.torch.rms_norm has no out= (its rows are as called)"}}
THP = {"twinop-torch": "twinop-torch-thp", "torch-eager": "torch-eager-thp"}  # PyTorch's huge-page switch
CHAIN = 4  # twinop-tf-chain: a tf.function of this many calls, each on the one before's output, timed per op
# The speed verdict's comparisons (verdicts.speed), timed again in rounds on the CPU at the largest
# size, in a fresh process per framework per round, the frameworks taking turns, so that a slow spell
# of a shared machine falls on each in turn rather than on one: twinop's kernel through each
# framework (per op, into outputs neither allocates afresh where the binding has out=) and each
# framework's own composition. numpy's out= rides along as the bare kernel's time. Per op.
HEAD_TO_HEAD = {
    "bias_act": {"torch": ("twinop-torch-out", "torch-eager", "torch-compile"),
                 "tensorflow": ("twinop-tf-chain", "tf-function", "tf-xla"), "numpy": ("twinop-numpy-out",)},
    "rms_norm": {"torch": ("twinop-torch", "torch-eager", "torch-compile"),
                 "tensorflow": ("twinop-tf-chain", "tf-function", "tf-xla", "keras-rmsnorm"),
                 "numpy": ("twinop-numpy-out",)},
}
# ...and on pages of one size: numpy asks the kernel for 2 MiB pages for its large arrays (and TF tensors
# made from them), PyTorch's and TensorFlow's allocators do not, and the same kernel took 9-14% longer on
# 4 KiB pages. With numpy's request off, every binding's inputs and outputs get the same kind of page.
HEAD_TO_HEAD_ENV = {"NUMPY_MADVISE_HUGEPAGE": "0"}
ROUNDS = {"tiny": 1, "quick": 3, "full": 5}
FRAMEWORKS = ("torch", "tensorflow", "numpy", "jax")
GPU_FRAMEWORKS = ("torch", "jax")  # the machines this was written for have no CUDA build of TensorFlow

ALL_DTYPES = ("float32", "float64", "float16", "bfloat16")
ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}  # bytes per element
DTYPES = {"tiny": ("float32",), "quick": ("float32", "bfloat16"), "full": ALL_DTYPES}

# (rows, columns) swept, smallest first, up to the sizes of the peer baselines (4096 x 4096 on the
# CPU, 16384 x 8192 on the GPU): on 2 busy cores quick mode took under 2 minutes, full about 8.
SIZES = {
    ("cpu", "tiny"): ((8, 64), (256, 768)),
    ("cpu", "quick"): ((8, 64), (256, 768), (1024, 1024), (4096, 4096)),
    ("cpu", "full"): ((8, 64), (256, 768), (1024, 1024), (2048, 4096), (4096, 4096)),
    ("cuda", "tiny"): ((8, 64), (256, 768)),
    ("cuda", "quick"): ((8, 64), (1024, 1024), (4096, 4096), (16384, 8192)),
    ("cuda", "full"): ((8, 64), (256, 768), (1024, 1024), (4096, 1024), (4096, 4096), (8192, 8192), (16384, 8192)),
}
OVERHEAD_SHAPE = (8, 64)

# Elements a pass must move at least, per element of x (as in shared/notes/baselines.md):
# fwd reads x and writes y; fwd+bwd adds reading x and dy and writing dx.
ELEMENTS_MOVED = {"fwd": 2, "fwd+bwd": 5, "copy": 2}

PROGRESS_PREFIX = "@progress "  # marks the worker's progress lines among its stderr


def measure(device, mode, progress, op="bias_act"):
    """Times every impl of `op` on `device` ("cpu" or "cuda") in `mode` ("quick", "full" or "tiny"),
    calling progress(line) once per step. Returns {"device", "op", "machine", "versions": {framework:
    version}, "rows": [{"op", "impl", "framework", "dtype", "shape", "pass", "median_ms" (per op for a
    "chain" of ops), "GBps", "copy_fraction", "compile_s" for compiled impls, "host_bound": True where
    CudaTimer says so, "page_faults" per call on the CPU at the largest size}],
    "copy": [{"framework", "dtype", "shape", "median_ms", "GBps", maybe "host_bound"}], "overhead": [{"impl", "dtype", "shape", "pass", "median_us"}], "skipped":
    [{"impl", "reason"}], "rounds" (CPU only): one list per round of the rows of HEAD_TO_HEAD's impls
    at the largest size}; a skipped "impl" may name a framework (all its impls) or be "all"."""
    if mode not in DTYPES or (device, mode) not in SIZES:
        raise ValueError(f"device must be cpu or cuda and mode quick, full or tiny; got {device!r}, {mode!r}")
    result = {"device": device, "op": op, "machine": None, "versions": {}, "rows": [], "copy": [], "overhead": [],
              "skipped": []}
    result["skipped"] += [{"impl": impl, "reason": why} for impl, why in ABSENT[op].items()]
    left_out = [d for d in ALL_DTYPES if d not in DTYPES[mode]]
    if left_out:
        result["skipped"].append({"impl": "all", "reason": f"{mode} mode measures {', '.join(DTYPES[mode])} only; "
                                                            f"{', '.join(left_out)} in full mode"})
    for framework in FRAMEWORKS:
        if device == "cuda" and framework not in GPU_FRAMEWORKS:
            result["skipped"].append({"impl": framework, "reason": f"timed on the CPU only ({framework} on "
                                                                   "cuda is not measured by this report)"})
            continue
        part = _run_worker(framework, device, mode, progress, "--op", op)
        result["machine"] = result["machine"] or part["machine"]
        result["versions"][framework] = part["version"]
        for key in ("rows", "copy", "overhead", "skipped"):
            result[key] += part[key]
    if device == "cpu":  # a process of its own: the switch is read when torch's allocator starts
        part = _run_worker("torch", device, mode, progress, "--op", op, "--thp")
        copies = {(c["framework"], c["dtype"], tuple(c["shape"])): c for c in result["copy"]}
        for row in part["rows"]:  # against the same copy as the other torch rows
            copy = copies.get((row["framework"], row["dtype"], tuple(row["shape"])))
            row["copy_fraction"] = row["GBps"] / copy["GBps"] if copy else row["copy_fraction"]
        for key in ("rows", "overhead", "skipped"):
            result[key] += part[key]
        timed = [f for f in HEAD_TO_HEAD[op] if result["versions"].get(f)]
        result["rounds"] = [sum((_run_worker(f, device, mode, progress, "--op", op, "--head-to-head",
                                             env=HEAD_TO_HEAD_ENV)["rows"]
                                 for f in timed), [])
                            for _ in range(ROUNDS[mode])]
    return result


def _run_worker(framework, device, mode, progress, *options, env=None):
    """One worker's JSON, the worker run with `env` added to this process's environment; raises
    RuntimeError with its last lines of stderr if it fails (a wrong result is among the failures: a
    benchmark of it would be worthless)."""
    command = [sys.executable, "-m", "twinop.report._runtime_worker",
               "--framework", framework, "--device", device, "--mode", mode, *options]
    with tempfile.TemporaryFile("w+") as stdout:  # a file, not a pipe: the JSON may exceed a pipe's buffer
        worker = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, **(env or {})})
        tail = collections.deque(maxlen=25)
        for line in worker.stderr:
            if line.startswith(PROGRESS_PREFIX):
                progress(line[len(PROGRESS_PREFIX):].rstrip("\n"))
            else:
                tail.append(line)
        if worker.wait() != 0:
            raise RuntimeError(f"the {framework} runtime worker failed (exit {worker.returncode}):\n"
                               + "".join(tail))
        stdout.seek(0)
        return json.load(stdout)

