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


def built_with():
    """What this install was built with, for `twinop info` and the report."""
    return {
        "torch": _build_info.TORCH_VERSION or None,
        "tensorflow": _build_info.TF_VERSION or None,
        "jax": _build_info.JAX_VERSION or None,
        "cuda": _build_info.WITH_CUDA,
        "cuda_archs": _build_info.CUDA_ARCHS if _build_info.WITH_CUDA else None,
        "compiler": _build_info.CXX_COMPILER,
    }
