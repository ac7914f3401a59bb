"""Axis 2, type and device support: each binding called on each dtype and device, one
framework per subprocess (_support_worker), so torch and TensorFlow never share a process."""
import glob
import json
import os
import subprocess
import sys

FRAMEWORKS = ("numpy", "torch", "tensorflow", "jax")
EXPECTED = ("float32", "float64", "float16", "bfloat16")  # the dtypes twinop documents
PROBES = ("int32", "complex64")  # dtypes it must refuse, to see the error a user gets
SHAPE = (3, 5, 7)  # odd sizes: no vector path hides a tail bug
# rtol = atol, loose on purpose: this is a does-it-work matrix, tests/ holds the tight bounds.
TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 2e-2, "bfloat16": 2e-2}


def measure(progress):
    """{"frameworks": {name: worker result}}; the workers run side by side (each is mostly import time)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    workers = {
        name: subprocess.Popen([sys.executable, "-m", "twinop.report._support_worker", name], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
        for name in FRAMEWORKS
    }
    results = {}
    for name, worker in workers.items():
        out, err = worker.communicate()
        if worker.returncode == 0:
            results[name] = json.loads(out.strip().splitlines()[-1])
        else:
            results[name] = {"framework": name, "worker_error": (err.strip().splitlines() or ["(no output)"])[-1],
                             "cells": []}
        progress(f"support: {name} probed")
    return {"frameworks": results, "expected": list(EXPECTED), "probes": list(PROBES)}


def cuda_available():
    """Whether torch sees a GPU (the runtime times CUDA through torch), asked in a subprocess so
    this process imports no framework; without NVIDIA device files, no need to ask."""
    if not glob.glob("/dev/nvidia[0-9]*"):
        return False
    result = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                            capture_output=True, text=True)
    return result.stdout.strip().endswith("True")
