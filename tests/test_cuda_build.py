"""The CUDA build on a machine without a GPU: the kernels compile with nvcc, and the op
libraries with GPU kernels load under CPU-only torch, TensorFlow and JAX (static cudart, linked
before TensorFlow's CUDA stubs). Skipped where nvcc or cmake is missing."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None or shutil.which("cmake") is None,
                                reason="needs nvcc and cmake")


@pytest.fixture(scope="module")
def cuda_package(tmp_path_factory):
    """A copy of the twinop package holding libraries built with TWINOP_CUDA=ON."""
    pybind11 = pytest.importorskip("pybind11")
    build, package = tmp_path_factory.mktemp("build"), tmp_path_factory.mktemp("site")
    subprocess.run(["cmake", "-S", ROOT, "-B", str(build), "-G", "Ninja", "-DTWINOP_CUDA=ON",
                    f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    shutil.copytree(os.path.join(ROOT, "python", "twinop"), package / "twinop")
    for built in os.listdir(build):
        if built.endswith(".so") or built == "_build_info.py":
            shutil.copy(build / built, package / "twinop")
    return package


def run_in(package, code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=str(package), env={**os.environ, "PYTHONPATH": str(package), **env})


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
    pytest.importorskip("tensorflow")
    result = run_in(cuda_package, """
        import tensorflow as tf, twinop.tf
        from tensorflow.python.framework import kernels
        print(sorted({k.device_type for k in kernels.get_registered_kernels_for_op("Twinop>BiasAct").kernel}))
        print(float(tf.reduce_sum(twinop.tf.bias_act(tf.zeros((2, 3)), tf.zeros(3), "relu"))))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["['CPU', 'GPU']", "0.0"]


def test_jax_library_with_cuda_handlers_loads_on_cpu_jax(cuda_package):
    """The CUDA targets are registered (JAX queues them until a CUDA backend loads), and the CPU
    handlers still run."""
    pytest.importorskip("jax")
    result = run_in(cuda_package, """
        import jax.numpy as jnp, twinop.jax
        from twinop.jax import _library
        print(all(hasattr(_library.library, f"TwinopBiasAct{op}Cuda") for op in ("", "Backward", "DoubleBackward")))
        print(float(jnp.sum(twinop.jax.bias_act(jnp.zeros((2, 3)), jnp.zeros(3), "relu"))))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "0.0"]
