"""Finding the CUDA toolkit pip installs (cmake/query_cuda_toolkit.py) on fake layouts: the settings
for a whole one, and for an incomplete one, one of mixed releases or one of another CUDA than the
framework's, a configure-time error naming the package and the `pip install` line that fixes it.
The real toolkit is built with in tests/test_cuda_build.py."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest
from cuda_toolkits import without_system_cuda

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERY = os.path.join(ROOT, "cmake", "query_cuda_toolkit.py")
_spec = importlib.util.spec_from_file_location("query_cuda_toolkit", QUERY)
query_cuda_toolkit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(query_cuda_toolkit)

RELEASE_13_0 = {"nvidia-cuda-nvcc": "13.0.88", "nvidia-nvvm": "13.0.88", "nvidia-cuda-crt": "13.0.88",
                "nvidia-cuda-runtime": "13.0.96", "nvidia-cuda-cccl": "13.0.85"}
FIX_13_0 = 'pip install "cuda-toolkit[nvcc,nvvm,crt,cudart,cccl]==13.0.*"'


def fake_toolkit(site, versions=RELEASE_13_0, without_files=()):
    """The nvidia/cu13 layout pip makes, with empty files: a .dist-info per package in `versions`
    and the files the query looks for, less `without_files`."""
    for name, version in versions.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        for path in query_cuda_toolkit.PACKAGES[name][1]:
            if path not in without_files:
                file = site / query_cuda_toolkit.ROOT / path
                file.parent.mkdir(parents=True, exist_ok=True)
                file.touch()
    return site


def query(site, out, *frameworks):
    """Runs the query with only `site` for site-packages (-S: not this environment's)."""
    result = subprocess.run([sys.executable, "-S", QUERY, str(out), *frameworks], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(site)})
    settings = out / "cuda_toolkit_settings.cmake"
    error = out / "cuda_toolkit_error.txt"
    return result.returncode, (settings.read_text() if settings.exists() else error.read_text())


def test_requirements_file_pins_every_package_the_query_needs():
    with open(os.path.join(ROOT, "requirements-cuda.txt")) as fh:
        extras = re.search(r"^cuda-toolkit\[([^\]]*)\]==", fh.read(), re.MULTILINE).group(1).split(",")
    assert sorted(extras) == sorted(extra for extra, _, _ in query_cuda_toolkit.PACKAGES.values())


def test_a_whole_toolkit_of_the_frameworks_release_gives_its_nvcc_and_libraries(tmp_path):
    site = fake_toolkit(tmp_path / "site")
    status, settings = query(site, tmp_path, "torch=13.0", "jax=13")
    root = site / "nvidia" / "cu13"
    assert status == 0, settings
    assert f'set(PIP_CUDA_COMPILER "{root / "bin" / "nvcc"}")' in settings
    assert f'set(PIP_CUDA_LIBRARY_DIR "{root / "lib"}")' in settings
    assert f'set(PIP_CUDA_CUDART "{root / "lib" / "libcudart.so.13"}")' in settings


def test_a_cpu_framework_is_no_version_to_match(tmp_path):
    """CMake passes torch= for a torch without CUDA: the toolkit is then checked only for itself."""
    status, settings = query(fake_toolkit(tmp_path / "site", {k: "13.2.1" for k in RELEASE_13_0}), tmp_path,
                             "torch=", "jax=")
    assert status == 0 and "PIP_CUDA_COMPILER" in settings


@pytest.mark.parametrize("versions,without_files,frameworks,status,expected", [
    ({}, (), ["torch=13.0"], 1, ["nvidia-cuda-nvcc is not installed", FIX_13_0]),
    ({k: v for k, v in RELEASE_13_0.items() if k != "nvidia-nvvm"}, (), [], 2, ["lacks nvidia-nvvm", FIX_13_0]),
    # What pip resolves without pins: nvcc's dependencies at their newest release.
    ({**RELEASE_13_0, "nvidia-nvvm": "13.5.37", "nvidia-cuda-crt": "13.5.37"}, (), ["torch=13.0"], 2,
     ["mixes releases: nvidia-nvvm 13.5.37, nvidia-cuda-crt 13.5.37 with nvidia-cuda-nvcc 13.0.88", FIX_13_0]),
    (RELEASE_13_0, ("lib/libcudart_static.a",), [], 2, ["lacks lib/libcudart_static.a (from nvidia-cuda-runtime)",
                                                        FIX_13_0]),
    (RELEASE_13_0, (), ["torch=12.8"], 2, ["torch is built with CUDA 12.8", "install a CUDA 12.8 toolkit"]),
    ({k: "13.2.1" for k in RELEASE_13_0}, (), ["torch=13.0"], 2, ["13.2", "newer than torch's CUDA 13.0", FIX_13_0]),
    (RELEASE_13_0, (), ["jax=12"], 2, ["jax is built with CUDA 12", "install a CUDA 12 toolkit"]),
])
def test_an_unusable_toolkit_says_what_is_wrong_and_the_pip_line(tmp_path, versions, without_files, frameworks,
                                                                 status, expected):
    site = fake_toolkit(tmp_path / "site", versions, without_files)
    got_status, message = query(site, tmp_path, *frameworks)
    assert got_status == status, message
    for text in expected:
        assert text in message


def configure(tmp_path, site, *defines):
    """Configures with every framework off and no system CUDA toolkit in sight (no nvcc on PATH):
    (exit status, stderr)."""
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = subprocess.run(
        [shutil.which("cmake"), "-S", ROOT, "-B", str(tmp_path / "build"), "-G", "Ninja",
         f"-DCMAKE_MAKE_PROGRAM={shutil.which('ninja')}", "-DTWINOP_TORCH=OFF", "-DTWINOP_TORCH_STABLE=OFF",
         "-DTWINOP_TF=OFF", "-DTWINOP_JAX=OFF", f"-DPython_EXECUTABLE={bare / 'bin' / 'python'}", *defines],
        capture_output=True, text=True,
        env={**without_system_cuda(), "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"})
    return result.returncode, re.sub(r"\s+", " ", result.stderr)  # CMake wraps its messages


needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ninja") is None,
                                 reason="needs cmake and ninja")


@needs_cmake
def test_configure_stops_at_an_incomplete_pip_toolkit(tmp_path):
    site = fake_toolkit(tmp_path / "site", {k: v for k, v in RELEASE_13_0.items() if k != "nvidia-nvvm"})
    status, stderr = configure(tmp_path, site, "-DTWINOP_CUDA=ON")
    assert status != 0
    assert "twinop: the pip CUDA toolkit in" in stderr and "lacks nvidia-nvvm" in stderr
    assert FIX_13_0 in stderr and "TWINOP_CUDA=OFF" in stderr
    assert "Call Stack" not in stderr


@needs_cmake
def test_cuda_on_without_any_toolkit_gives_the_pip_line(tmp_path):
    status, stderr = configure(tmp_path, tmp_path / "empty-site", "-DTWINOP_CUDA=ON")
    assert status != 0
    assert "twinop: TWINOP_CUDA=ON, but no CUDA compiler (nvcc) was found" in stderr
    assert FIX_13_0 in stderr
    assert "Call Stack" not in stderr
