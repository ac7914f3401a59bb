"""Build friction, the edit-rebuild loop an op author lives in: from an existing build directory,
the seconds to rebuild a binding and load it again, after touching the shared math header
(csrc/core/activation_math.h) and after touching only that binding's own source file.

Measured the way the README (*Build*, developing) says to work: one build directory holding every
binding, `cmake --build DIR --target TARGET && cmake --install DIR --prefix SITE` after an edit,
then a fresh `python -c "import twinop.X; ..."` (a process cannot reload an op library). The loop
runs on a copy of the checkout, so touching files there disturbs no one's build."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from .build_friction import BINDINGS, _run, _tail, _tool, configure_args

MATH_HEADER = "csrc/core/activation_math.h"
OWN_FILE = {  # the file an author of each binding edits most: its CPU kernel wrapper
    "numpy": "csrc/numpy/module.cpp",
    "torch": "csrc/torch/bias_act_cpu.cpp",
    "torch-stable": "csrc/torch_stable/bias_act_cpu.cpp",
    "tensorflow": "csrc/tensorflow/bias_act_cpu.cc",
}
# A fresh process loading the binding and running the op once; the torch libraries chosen by name.
RELOAD = {
    "numpy": ("import numpy as np, twinop.numpy as t; t.bias_act(np.ones((2, 3)), np.zeros(3))", {}),
    "torch": ("import torch, twinop.torch as t; t.bias_act(torch.ones(2, 3), torch.zeros(3))",
              {"TWINOP_TORCH_ABI": "classic"}),
    "torch-stable": ("import torch, twinop.torch as t; t.bias_act(torch.ones(2, 3), torch.zeros(3))",
                     {"TWINOP_TORCH_ABI": "stable"}),
    "tensorflow": ("import tensorflow as tf, twinop.tf as t; t.bias_act(tf.ones((2, 3)), tf.zeros(3))",
                   {"TF_CPP_MIN_LOG_LEVEL": "3"}),
}
SOURCES = ("CMakeLists.txt", "cmake", "csrc", "cuda", "python")  # what a build reads, and the package
REBUILD = "cmake --build DIR --target TARGET && cmake --install DIR --prefix SITE"


def _switches(bindings):
    """All the bindings asked for in one build directory (the numpy module is always built)."""
    switches = {"TWINOP_TORCH": "OFF", "TWINOP_TORCH_STABLE": "OFF", "TWINOP_TF": "OFF"}
    for binding in bindings:
        switches.update({k: v for k, v in BINDINGS[binding][1].items() if v == "ON"})
    return switches


def _copy_checkout(source_dir, copy):
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "_build_info.py")  # nothing built in place
    os.makedirs(copy)
    for name in SOURCES:
        path = os.path.join(source_dir, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(copy, name), ignore=ignore)
        else:
            shutil.copy2(path, os.path.join(copy, name))


def _touch(path):
    now = time.time()
    os.utime(path, (now, now))


def _timed_rebuild(build_dir, site, target):
    """(wall, cpu, the sources ninja compiled, failure or None) of the documented rebuild command."""
    wall, cpu, compiled = 0.0, 0.0, []
    for command in ([_tool("cmake"), "--build", build_dir, "--target", target],
                    [_tool("cmake"), "--install", build_dir, "--prefix", site]):
        w, c, result = _run(command)
        wall, cpu = wall + w, cpu + c
        compiled += [line.rsplit(" ", 1)[-1] for line in result.stdout.splitlines() if " Building " in line]
        if result.returncode:
            return wall, cpu, compiled, _tail(result, 8)
    return wall, cpu, compiled, None


def _timed_reload(site, binding):
    code, env = RELOAD[binding]
    wall, cpu, result = _run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": site, **env})
    return wall, cpu, _tail(result, 3) if result.returncode else None


def measure(source_dir, bindings, with_cuda, progress):
    """{"bindings": {binding: {trigger: {rebuild/reload wall and CPU seconds}}}} for the bindings
    asked for that have an own file, after one untimed full build; trigger: "math header" or
    "own file"."""
    bindings = [b for b in bindings if b in OWN_FILE]
    if not bindings:
        return {"available": False, "reason": "no binding was built"}
    with tempfile.TemporaryDirectory(prefix="twinop-report-loop-") as scratch:
        source, build_dir, site = (os.path.join(scratch, name) for name in ("src", "build", "site"))
        _copy_checkout(source_dir, source)
        shutil.copytree(os.path.join(source, "python", "twinop"), os.path.join(site, "twinop"))
        steps = [configure_args(source, build_dir, _switches(bindings), with_cuda),
                 [_tool("cmake"), "--build", build_dir], [_tool("cmake"), "--install", build_dir, "--prefix", site]]
        for command in steps:
            _, _, result = _run(command)
            if result.returncode:
                return {"available": False, "reason": f"the first build failed: {_tail(result).splitlines()[-1]}"}
        progress("build: edit loop, first build done")
        results = {"available": True, "with_cuda": with_cuda, "math_header": MATH_HEADER, "bindings": {}}
        for binding in bindings:
            entry = results["bindings"][binding] = {"own_file": OWN_FILE[binding]}
            for trigger, touched in (("math header", MATH_HEADER), ("own file", OWN_FILE[binding])):
                _touch(os.path.join(source, touched))
                rebuild_wall, rebuild_cpu, compiled, failure = _timed_rebuild(build_dir, site, BINDINGS[binding][0])
                reload_wall, reload_cpu, failure = (0.0, 0.0, failure) if failure else _timed_reload(site, binding)
                entry[trigger] = {"rebuild_wall_s": rebuild_wall, "rebuild_cpu_s": rebuild_cpu, "compiled": compiled,
                                  "reload_wall_s": reload_wall, "reload_cpu_s": reload_cpu, "error": failure}
            math, own = (entry[trigger]["rebuild_wall_s"] for trigger in ("math header", "own file"))
            progress(f"build: edit loop, {binding}: {math:.1f} s after the math header, {own:.1f} s after its own file")
    return results

