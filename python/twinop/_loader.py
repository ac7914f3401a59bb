"""Finds a binding's compiled library and refuses one built for another framework version."""
import os

from . import _build_info

REBUILD_HINT = "rebuild twinop from its source tree with: pip install --no-build-isolation --force-reinstall --no-deps ."


def library_path(framework, built_version, installed_version, filename):
    """Path of a binding's shared library; ImportError if it was not built or was built
    against another version of its framework (whose C++ ABI it would not match)."""
    path = os.path.join(os.path.dirname(__file__), filename)
    if not built_version or not os.path.exists(path):
        raise ImportError(
            f"twinop was installed without its {framework} op ({framework} was not importable at build "
            f"time, or its switch was OFF); with {framework} installed, {REBUILD_HINT}")
    if built_version != installed_version:
        raise ImportError(
            f"twinop's {framework} op was built against {framework} {built_version}, but {framework} "
            f"{installed_version} is installed; {REBUILD_HINT}")
    return path


def stable_library_path(framework, target_version, installed_version, filename):
    """Path of a library built on the framework's stable ABI; ImportError if it was not built or
    the installed framework is older than the version it targets (from which on it loads)."""
    path = os.path.join(os.path.dirname(__file__), filename)
    if not target_version or not os.path.exists(path):
        raise ImportError(
            f"twinop was installed without its {framework} stable-ABI op (its switch was OFF, or {framework} was "
            f"missing or older than the stable ABI it needs at build time); {REBUILD_HINT}")
    if _release(installed_version) < _release(target_version):
        raise ImportError(
            f"twinop's {framework} stable-ABI op loads in {framework} {target_version} or later, but {framework} "
            f"{installed_version} is installed; upgrade {framework}, or {REBUILD_HINT}")
    return path


def _release(version):
    """(major, minor) of a version string such as '2.13.0+cpu'."""
    return tuple(int(part) for part in version.split(".")[:2])


def built_with():
    """What this install was built with, for `twinop info` and the report."""
    return {
        "torch": _build_info.TORCH_VERSION or None,
        "stable ABI": (f"torch >= {_build_info.TORCH_STABLE_TARGET} (headers of {_build_info.TORCH_STABLE_BUILT_WITH})"
                       if _build_info.TORCH_STABLE_TARGET else None),
        "tensorflow": _build_info.TF_VERSION or None,
        "jax": _build_info.JAX_VERSION or None,
        "cuda": _build_info.WITH_CUDA,
        "cuda_archs": _build_info.CUDA_ARCHS if _build_info.WITH_CUDA else None,
        "nvcc": _build_info.CUDA_TOOLKIT or None,  # whose: "system 13.0.88" or "pip 13.0.88"
        "compiler": _build_info.CXX_COMPILER,
    }
