"""Asked by CMake: write, as CMake `set()` lines, how to build against installed frameworks.

Usage: python query_framework.py OUTPUT_DIR torch|tensorflow|jax...
For each framework, writes OUTPUT_DIR/<framework>_settings.cmake, or, when it cannot be
imported, OUTPUT_DIR/<framework>_import_error.txt (also printed on stderr) and exits 1.
"""
import os
import subprocess
import sys


def torch_settings():
    import torch

    root = os.path.dirname(torch.__file__)
    return {
        "VERSION": torch.__version__,
        "INCLUDE_DIRS": [os.path.join(root, "include"), os.path.join(root, "include", "torch", "csrc", "api", "include")],
        "LIBRARY_DIR": os.path.join(root, "lib"),
        "CXX11_ABI": int(torch._C._GLIBCXX_USE_CXX11_ABI),
        "CUDA_VERSION": torch.version.cuda or "",
        "PARALLEL_OPENMP": int(_defines(os.path.join(root, "include", "ATen", "Config.h"), "AT_PARALLEL_OPENMP")),
        "OPENMP_RUNTIME": next((os.path.join(root, "lib", name) for name in sorted(os.listdir(os.path.join(root, "lib")))
                                if name.startswith("libgomp") and ".so" in name), ""),
    }


def _defines(header, name):
    """Whether `header` has `#define name 1`."""
    with open(header) as fh:
        return any(line.split() == ["#define", name, "1"] for line in fh)


def tensorflow_settings():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return {
        "VERSION": tf.__version__,
        "COMPILE_FLAGS": tf.sysconfig.get_compile_flags(),
        "LINK_FLAGS": tf.sysconfig.get_link_flags(),
        "CUDA_VERSION": tf.sysconfig.get_build_info().get("cuda_version", "") if tf.test.is_built_with_cuda() else "",
    }


def jax_settings():
    import importlib.util

    import jax

    # The XLA FFI headers ship with jaxlib, and the handlers link nothing of it. CUDA: the major
    # version of the jax CUDA plugin installed, if any (found without importing it).
    plugins = [major for major in ("13", "12") if importlib.util.find_spec(f"jax_cuda{major}_plugin")]
    return {
        "VERSION": jax.__version__,
        "INCLUDE_DIR": jax.ffi.include_dir(),
        "CUDA_VERSION": plugins[0] if plugins else "",
    }


SETTINGS = {"torch": (torch_settings, "TORCH"), "tensorflow": (tensorflow_settings, "TF"), "jax": (jax_settings, "JAX")}


def query(out_dir, framework):
    """Writes one framework's settings, or its import error; returns the exit status."""
    settings_path = os.path.join(out_dir, f"{framework}_settings.cmake")
    error_path = os.path.join(out_dir, f"{framework}_import_error.txt")
    for stale in (settings_path, error_path):
        if os.path.exists(stale):
            os.remove(stale)
    read, prefix = SETTINGS[framework]
    try:
        settings = read()
    except ImportError as error:
        message = f"{type(error).__name__}: {error}"
        with open(error_path, "w") as out:
            out.write(message)
        print(message, file=sys.stderr)
        return 1
    with open(settings_path, "w") as out:
        for key, value in settings.items():
            text = ";".join(map(str, value)) if isinstance(value, list) else str(value)
            out.write(f'set({prefix}_{key} "{text}")\n')
    return 0


def main():
    out_dir, frameworks = sys.argv[1], sys.argv[2:]
    if len(frameworks) == 1:
        sys.exit(query(out_dir, frameworks[0]))
    # One process per framework, all at once: importing them is most of CMake's configure time.
    children = [subprocess.Popen([sys.executable, __file__, out_dir, framework]) for framework in frameworks]
    sys.exit(max(child.wait() for child in children))


if __name__ == "__main__":
    main()
