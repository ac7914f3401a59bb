"""Another build of twinop's numpy module (a baseline to compare with), loaded beside the installed one
in the same process: its `_twinop_numpy` library under another module name.

Build one from another checkout, the numpy module alone (a minute):
    cmake -S CHECKOUT -B DIR -G Ninja -DTWINOP_TORCH=OFF -DTWINOP_TF=OFF -DTWINOP_TORCH_STABLE=OFF \\
          -DTWINOP_JAX=OFF -DTWINOP_CUDA=OFF -DPython_EXECUTABLE=$(which python) \\
          -Dpybind11_DIR=$(python -m pybind11 --cmakedir)
    cmake --build DIR --target _twinop_numpy
"""
import glob
import importlib.util
import os


def load_numpy_module(directory, name="baseline"):
    """The `_twinop_numpy` library found under directory, as module `name._twinop_numpy` (CPython
    finds its init function by the last part of the name), with as many threads as the installed
    binding uses by default."""
    found = sorted(glob.glob(os.path.join(directory, "**", "_twinop_numpy*.so"), recursive=True))
    if not found:
        raise SystemExit(f"no _twinop_numpy*.so under {directory}")
    spec = importlib.util.spec_from_file_location(f"{name}._twinop_numpy", found[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    module.set_num_threads(cpus)
    return module
