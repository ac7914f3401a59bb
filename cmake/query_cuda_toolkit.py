"""Asked by CMake: find the CUDA toolkit pip installs (NVIDIA's nvidia-* packages, the nvidia/cu13
layout) in this Python's environment, check that it is whole, of one release, and of the CUDA the
frameworks were built with, and write how to use it as CMake `set()` lines.

Usage: python query_cuda_toolkit.py OUTPUT_DIR [FRAMEWORK=CUDA_VERSION...]   (torch=13.0 jax=13)
Writes OUTPUT_DIR/cuda_toolkit_settings.cmake and exits 0, or writes the reason, with the
`pip install` line that fixes it, to OUTPUT_DIR/cuda_toolkit_error.txt (also printed on stderr)
and exits 1 where no pip toolkit is installed (no nvidia-cuda-nvcc), 2 where one is unusable.
"""
import os
import re
import sys
from importlib import metadata

LAYOUT_MAJOR = 13
ROOT = f"nvidia/cu{LAYOUT_MAJOR}"
# package -> (cuda-toolkit extra that pins it, files the build needs from it, what they are)
PACKAGES = {
    "nvidia-cuda-nvcc": ("nvcc", ["bin/nvcc", "bin/ptxas"], "the compiler driver and assembler"),
    "nvidia-nvvm": ("nvvm", ["nvvm/bin/cicc"], "the device compiler nvcc runs"),
    "nvidia-cuda-crt": ("crt", ["include/crt/host_config.h"], "nvcc's runtime headers"),
    "nvidia-cuda-runtime": ("cudart", ["include/cuda_runtime.h", "lib/libcudart_static.a",
                                       f"lib/libcudart.so.{LAYOUT_MAJOR}"], "the CUDA runtime"),
    "nvidia-cuda-cccl": ("cccl", ["include/nv/target"], "the C++ libraries the CUDA headers include"),
}
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = os.path.join(SOURCE_DIR, "requirements-cuda.txt")


def pinned_release():
    """(major, minor) of the toolkit requirements-cuda.txt pins: the pinned frameworks' CUDA."""
    with open(REQUIREMENTS) as fh:
        match = re.search(r"^cuda-toolkit\[[^\]]*\]==(\d+)\.(\d+)", fh.read(), re.MULTILINE)
    return int(match.group(1)), int(match.group(2))


def release(version):
    """(major, minor) of '13.0.88', '13.0' or '13' (minor None)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]]
    return parts[0], (parts[1] if len(parts) > 1 else None)


def how_to_get(major, minor):
    """The fix for a build that wants CUDA major.minor (minor None: any)."""
    version = f"{major}.{minor}" if minor is not None else f"{major}"
    if major != LAYOUT_MAJOR:
        return (f"twinop finds pip's CUDA {LAYOUT_MAJOR} toolkit ({ROOT}) only; install a CUDA {version} toolkit "
                f"(nvcc on PATH)")
    extras = ",".join(extra for extra, _, _ in PACKAGES.values())
    return f'pip install "cuda-toolkit[{extras}]=={version}.*"'


def installed():
    """{package: version} of the toolkit's packages installed in this environment."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def find(frameworks):
    """Returns (status, text): 0 and {KEY: value} settings, or 1 / 2 and the reason."""
    versions = installed()
    nvcc = versions.get("nvidia-cuda-nvcc")
    # The release a fix pins: the frameworks' CUDA (JAX's plugin names only a major), else the
    # installed compiler's, else the pinned frameworks'.
    built_with = frameworks.get("torch") or frameworks.get("jax")
    fix = how_to_get(*(release(built_with) if built_with else release(nvcc) if nvcc else pinned_release()))
    where = f"the pip CUDA toolkit in {sys.prefix}"
    if not nvcc:
        return 1, f"no pip CUDA toolkit in {sys.prefix} (nvidia-cuda-nvcc is not installed): {fix}"
    missing = [f"{name} ({PACKAGES[name][2]})" for name in PACKAGES if name not in versions]
    if missing:
        return 2, f"{where} lacks {', '.join(missing)}: {fix}"
    apart = [f"{name} {v}" for name, v in versions.items() if release(v) != release(nvcc)]
    if apart:
        return 2, (f"{where} mixes releases: {', '.join(apart)} with nvidia-cuda-nvcc {nvcc} (its pieces must be "
                   f"of one release: nvcc's assembler rejects a newer nvvm's code): {fix}")
    # nvcc finds the rest relative to itself, so every piece must lie in its tree.
    root = str(metadata.distribution("nvidia-cuda-nvcc").locate_file(ROOT))
    absent = [f"{path} (from {name})" for name, (_, paths, _) in PACKAGES.items() for path in paths
              if not os.path.exists(os.path.join(root, path))]
    if absent:
        return 2, f"the pip CUDA toolkit in {root} lacks {', '.join(absent)}: reinstall it: {fix}"
    major, minor = release(nvcc)
    for framework, version in frameworks.items():
        built_major, built_minor = release(version)
        toolkit = f"the pip CUDA toolkit is {major}.{minor} (nvidia-cuda-nvcc {nvcc})"
        if major != built_major:
            return 2, f"{toolkit}, but {framework} is built with CUDA {version}: {fix}"
        # A newer minor writes PTX that the oldest driver the framework runs on cannot load.
        if built_minor is not None and minor > built_minor:
            return 2, f"{toolkit}, newer than {framework}'s CUDA {version}: {fix}"
    lib = os.path.join(root, "lib")
    return 0, {"COMPILER": os.path.join(root, "bin", "nvcc"), "LIBRARY_DIR": lib,
               "CUDART": os.path.join(lib, f"libcudart.so.{LAYOUT_MAJOR}")}


def main():
    out_dir = sys.argv[1]
    # An empty version: a CPU build of that framework, no CUDA to match.
    frameworks = {name: version for name, version in (arg.split("=", 1) for arg in sys.argv[2:]) if version}
    settings_path = os.path.join(out_dir, "cuda_toolkit_settings.cmake")
    error_path = os.path.join(out_dir, "cuda_toolkit_error.txt")
    for stale in (settings_path, error_path):
        if os.path.exists(stale):
            os.remove(stale)
    status, found = find(frameworks)
    if status:
        with open(error_path, "w") as out:
            out.write(found)
        print(found, file=sys.stderr)
        sys.exit(status)
    with open(settings_path, "w") as out:
        for key, value in found.items():
            out.write(f'set(PIP_CUDA_{key} "{value}")\n')


if __name__ == "__main__":
    main()
