"""The CUDA build on a machine without a GPU: the kernels compile with nvcc, from the system's CUDA
toolkit and from the one pip installs (requirements-cuda.txt, in a fresh venv with the system's
hidden), and the op libraries with GPU kernels load under CPU-only torch, TensorFlow and JAX
(static cudart, linked before TensorFlow's CUDA stubs). Skipped where that toolkit or cmake is
missing."""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest
from cuda_toolkits import without_system_cuda

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")


def pip_toolkit_venv(venv):
    """A fresh venv holding requirements-cuda.txt's toolkit, which sees this environment's frameworks
    (a .pth file): its Python, or a skip where pip cannot install the toolkit."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    with open(os.path.join(site, "frameworks.pth"), "w") as pth:
        pth.write("\n".join(sorted(ours)) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "-r",
                              os.path.join(ROOT, "requirements-cuda.txt")], capture_output=True, text=True)
    if install.returncode:
        pytest.skip(f"pip could not install requirements-cuda.txt: {install.stderr.strip().splitlines()[-1:]}")
    return python


@pytest.fixture(scope="module", params=["system", pytest.param("pip", marks=pytest.mark.slow)])
def toolkit(request):
    if request.param == "system" and shutil.which("nvcc") is None:
        pytest.skip("needs nvcc")
    return request.param


def build_step(command, env):
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


@pytest.fixture(scope="module")
def cuda_package(toolkit, tmp_path_factory):
    """A copy of the twinop package holding libraries built with TWINOP_CUDA=ON."""
    pybind11 = pytest.importorskip("pybind11")
    build, package = tmp_path_factory.mktemp("build"), tmp_path_factory.mktemp("site")
    python, env = sys.executable, dict(os.environ)
    if toolkit == "pip":
        python, env = pip_toolkit_venv(tmp_path_factory.mktemp("venv")), without_system_cuda()
    # One architecture (the H100's and H200's, clusters included) runs every tool of the toolkit, in a
    # third of the default's time (80-real;90: two SASS and a PTX per kernel).
    archs = ["-DTWINOP_CUDA_ARCHS=90-real"]
    cmake = shutil.which("cmake")
    build_step([cmake, "-S", ROOT, "-B", str(build), "-G", "Ninja", "-DTWINOP_CUDA=ON", *archs,
                f"-DCMAKE_MAKE_PROGRAM={shutil.which('ninja')}", f"-DPython_EXECUTABLE={python}",
                f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"], env)
    build_step([cmake, "--build", str(build)], env)
    shutil.copytree(os.path.join(ROOT, "python", "twinop"), package / "twinop")
    for built in os.listdir(build):
        if built.endswith(".so") or built == "_build_info.py":
            shutil.copy(build / built, package / "twinop")
    return package


def run_in(package, code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=str(package), env={**os.environ, "PYTHONPATH": str(package), **env})


def test_the_kernels_were_compiled_by_the_toolkit_asked_for(cuda_package, toolkit):
    """pip's: the release requirements-cuda.txt pins, found with no system toolkit in sight."""
    result = run_in(cuda_package, "import twinop._build_info as info; print(info.CUDA_TOOLKIT)")
    assert result.returncode == 0, result.stderr
    used = result.stdout.strip()
    assert used.split()[0] == toolkit, used
    if toolkit == "pip":
        with open(os.path.join(ROOT, "requirements-cuda.txt")) as fh:
            pinned = re.search(r"^cuda-toolkit\[.*\]==(\d+\.\d+)\.", fh.read(), re.MULTILINE).group(1)
        assert used.startswith(f"pip {pinned}."), used


@pytest.mark.parametrize("abi", ["classic", "stable"])
def test_torch_library_with_cuda_kernels_loads_on_cpu_torch(cuda_package, abi):
    """The stable-ABI library finds the C shim's CUDA stream getter at run time: linking it would
    tie the library to torch's CUDA builds."""
    pytest.importorskip("torch")
    result = run_in(cuda_package, """
        import torch, twinop._build_info as info, twinop.torch as tt
        print(info.WITH_CUDA, tt.ABI, torch._C._dispatch_has_kernel_for_dispatch_key("twinop::bias_act", "CUDA"))
        print(torch.ops.twinop.bias_act(torch.zeros(2, 3), torch.zeros(3), "relu").sum().item())
    """, TWINOP_TORCH_ABI=abi)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", abi, "True", "0.0"]


def test_tf_library_with_gpu_kernels_loads_on_cpu_tensorflow(cuda_package):
    """Every op has its GPU kernel registered (they run nowhere here), and the CPU kernels run."""
    pytest.importorskip("tensorflow")
    result = run_in(cuda_package, """
        import tensorflow as tf, twinop.tf
        from tensorflow.python.framework import kernels
        for op in ("BiasAct", "BiasActGrad", "BiasActGradGrad", "RmsNorm", "AddRmsNorm", "RmsNormGrad",
                   "AddRmsNormGrad"):
            print(op, sorted({k.device_type for k in kernels.get_registered_kernels_for_op("Twinop>" + op).kernel}))
        print(float(tf.reduce_sum(twinop.tf.bias_act(tf.zeros((2, 3)), tf.zeros(3), "relu"))))
        print(float(tf.reduce_sum(twinop.tf.rms_norm(tf.ones((2, 3)), tf.ones(3)))))
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-9:-2] == [f"{op} ['CPU', 'GPU']" for op in ("BiasAct", "BiasActGrad", "BiasActGradGrad", "RmsNorm",
                                                               "AddRmsNorm", "RmsNormGrad", "AddRmsNormGrad")]
    assert lines[-2] == "0.0" and abs(float(lines[-1]) - 6.0) < 1e-5


def test_jax_library_with_cuda_handlers_loads_on_cpu_jax(cuda_package):
    """The CUDA targets are registered (JAX queues them until a CUDA backend loads), and the CPU
    handlers still run."""
    pytest.importorskip("jax")
    result = run_in(cuda_package, """
        import jax.numpy as jnp, twinop.jax
        from twinop.jax import _library
        print(all(hasattr(_library.library, f"TwinopBiasAct{op}Cuda") for op in ("", "Backward", "DoubleBackward")))
        print(all(hasattr(_library.library, f"Twinop{op}Cuda")
                  for op in ("RmsNorm", "AddRmsNorm", "RmsNormBackward", "AddRmsNormBackward")))
        print(float(jnp.sum(twinop.jax.bias_act(jnp.zeros((2, 3)), jnp.zeros(3), "relu"))))
        print(float(jnp.sum(twinop.jax.rms_norm(jnp.ones((2, 3)), jnp.ones(3), 0.0))))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "0.0", "6.0"]


@pytest.mark.parametrize("framework,cpu,cuda", [("torch", "CPU", "CUDA"), ("tensorflow", "CPU", "GPU"),
                                                ("jax", "Host", "CUDA")])
def test_the_registry_lists_the_cuda_kernels_without_a_gpu(cuda_package, framework, cpu, cuda):
    """The report's reading of each framework's registry (_support_worker --registry) on this build:
    every op has its CUDA kernels listed beside its CPU ones; TensorFlow's with the dtypes its op def
    declares, the others' registries with none."""
    pytest.importorskip(framework)
    result = run_in(cuda_package, f"""
        import json
        from twinop.report._support_worker import registry
        print(json.dumps(registry({framework!r})))
    """)
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout.splitlines()[-1])
    from twinop.report.support import OP_NAMES

    assert read["built_with_cuda"] and set(read["ops"]) == {name for names in OP_NAMES.values()
                                                            for name in names[framework]}
    for name, op in read["ops"].items():
        assert {cpu, cuda} <= set(op["kernels"]), name
        assert op["kernels"][cuda] == op["declared_dtypes"], name
        assert (op["declared_dtypes"] == ["float32", "float64", "float16", "bfloat16"]) == (framework == "tensorflow")
