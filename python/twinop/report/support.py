"""Axis 2, type and device support, one framework per subprocess (_support_worker), so torch and
TensorFlow never share a process: each binding called on each dtype and device, and on a backend
it has no kernel for; and what each framework's own registry says of the op, read from a build
with CUDA where nvcc is found, so that the CUDA kernels register on a machine without a GPU."""
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

FRAMEWORKS = ("numpy", "torch", "tensorflow", "jax")
REGISTRY_FRAMEWORKS = ("torch", "tensorflow", "jax")
EXPECTED = ("float32", "float64", "float16", "bfloat16")  # the dtypes twinop documents
# rms_norm also takes a float32 weight with half-precision x (mixed precision's float32 parameters).
MIXED = {"bfloat16 x, float32 weight": ("bfloat16", "float32"), "float16 x, float32 weight": ("float16", "float32")}
DTYPES = {"bias_act": EXPECTED, "rms_norm": EXPECTED + tuple(MIXED)}  # per op, the dtype cells it must run
EPS = 1e-6  # rms_norm's epsilon in the probes
PROBES = ("int32", "complex64")  # dtypes it must refuse, to see the error a user gets
SHAPE = (3, 5, 7)  # odd sizes: no vector path hides a tail bug
# rtol = atol, loose on purpose: this is a does-it-work matrix, tests/ holds the tight bounds.
TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 2e-2, "bfloat16": 2e-2}
# Each op's forward, backward and double backward in each framework's registry.
OP_NAMES = {"bias_act": {
    "torch": ("twinop::bias_act", "twinop::bias_act_backward", "twinop::bias_act_double_backward"),
    "tensorflow": ("Twinop>BiasAct", "Twinop>BiasActGrad", "Twinop>BiasActGradGrad"),
    "jax": ("twinop_bias_act", "twinop_bias_act_backward", "twinop_bias_act_double_backward"),
}, "rms_norm": {  # no double backward: its second order is the backward's formula in framework ops
    "torch": ("twinop::rms_norm", "twinop::rms_norm_backward"),
    "tensorflow": ("Twinop>RmsNorm", "Twinop>RmsNormGrad"),
    "jax": ("twinop_rms_norm", "twinop_rms_norm_backward"),
}}
# The build the registry is read from: the library of each framework, and PTX for one architecture
# (the kernels register as they do with machine code, for a fraction of the build).
REGISTRY_TARGETS = {"torch": "_twinop_torch", "tensorflow": "_twinop_tf", "jax": "_twinop_jax"}
REGISTRY_CUDA_ARCHS = "90-virtual"


def measure(progress, source_dir=None, with_cuda=True):
    """{"frameworks": {name: worker result}, "registry": {"cuda": how the registry's build went,
    "frameworks": {name: registry worker result}}}. The call workers run side by side (each is
    mostly import time) while the CUDA build compiles; the registry workers after it.
    with_cuda=False reads the registry from the installed twinop, without building."""
    with tempfile.TemporaryDirectory(prefix="twinop-report-") as scratch, ThreadPoolExecutor(1) as pool:
        build = pool.submit(cuda_package, source_dir if with_cuda else None, scratch, progress)
        results = run_workers(FRAMEWORKS, (), {}, progress)
        site, cuda = build.result()
        registry = run_workers(REGISTRY_FRAMEWORKS, ("--registry",), {"PYTHONPATH": site} if site else {}, progress)
    return {"frameworks": results, "registry": {"cuda": cuda, "frameworks": registry},
            "expected": list(EXPECTED), "probes": list(PROBES)}


def run_workers(frameworks, options, env, progress):
    """{framework: the worker's JSON, or its last line of stderr}, one process each, side by side."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    workers = {name: subprocess.Popen([sys.executable, "-m", "twinop.report._support_worker", *options, name],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for name in frameworks}
    results = {}
    for name, worker in workers.items():
        out, err = worker.communicate()
        if worker.returncode == 0:
            results[name] = json.loads(out.strip().splitlines()[-1])
        else:
            results[name] = {"framework": name, "worker_error": (err.strip().splitlines() or ["(no output)"])[-1],
                             "cells": [], "ops": {}}
        progress(f"support: {name} {'registry read' if options else 'probed'}")
    return results


def cuda_package(source_dir, scratch, progress):
    """(site, how): a copy of the twinop package in scratch/site whose op libraries were built with
    TWINOP_CUDA=ON, and a line saying so; (None, why not) where nvcc or the sources are missing or
    the build fails (the registry is then read from the installed twinop)."""
    from . import build_friction

    if not build_friction.cuda_compiler_available():
        return None, "not built with CUDA: no nvcc here, so the registry was read from the installed twinop"
    if not source_dir or not os.path.isdir(os.path.join(source_dir, "csrc")):
        return None, ("not built with CUDA: no sources to build (or not asked to), so the registry was read from the "
                      "installed twinop")
    build, site = os.path.join(scratch, "build"), os.path.join(scratch, "site")
    targets = [t for framework, t in REGISTRY_TARGETS.items() if importlib.util.find_spec(framework)]
    progress(f"support: building {', '.join(targets)} with CUDA for the registry")
    configure = build_friction.configure_args(source_dir, build, {"TWINOP_CUDA_ARCHS": REGISTRY_CUDA_ARCHS}, True)
    for step in (configure, [build_friction._tool("cmake"), "--build", build, "--target", *targets]):
        _, _, result = build_friction._run(step)
        if result.returncode:
            return None, (f"the build with CUDA failed: {build_friction._tail(result, 1)}; the registry was read from "
                          "the installed twinop")
    shutil.copytree(os.path.join(source_dir, "python", "twinop"), os.path.join(site, "twinop"))
    installed = os.path.dirname(importlib.util.find_spec("twinop").origin)
    # `import twinop` loads the numpy module, which has no CUDA kernels: the installed one serves.
    for library in [*glob.glob(os.path.join(build, "*.so")), os.path.join(build, "_build_info.py"),
                    *glob.glob(os.path.join(installed, "_twinop_numpy*.so"))]:
        shutil.copy(library, os.path.join(site, "twinop"))
    return site, f"built with CUDA (TWINOP_CUDA=ON, {REGISTRY_CUDA_ARCHS}) from {source_dir}: {', '.join(targets)}"


def cuda_available():
    """Whether torch sees a GPU (the runtime times CUDA through torch), asked in a subprocess so
    this process imports no framework; without NVIDIA device files, no need to ask."""
    if not glob.glob("/dev/nvidia[0-9]*"):
        return False
    result = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                            capture_output=True, text=True)
    return result.stdout.strip().endswith("True")
