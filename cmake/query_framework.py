"""Asked by CMake: print, as CMake `set()` lines, how to build against an installed framework.

Usage: python query_framework.py torch|tensorflow OUTPUT.cmake
Exits 1, with the import error on stderr, when the framework cannot be imported.
"""
import os
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
    }


def tensorflow_settings():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return {
        "VERSION": tf.__version__,
        "COMPILE_FLAGS": tf.sysconfig.get_compile_flags(),
        "LINK_FLAGS": tf.sysconfig.get_link_flags(),
        "CUDA_VERSION": tf.sysconfig.get_build_info().get("cuda_version", "") if tf.test.is_built_with_cuda() else "",
    }


def main():
    framework, output = sys.argv[1], sys.argv[2]
    try:
        settings = {"torch": torch_settings, "tensorflow": tensorflow_settings}[framework]()
    except ImportError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    prefix = {"torch": "TORCH", "tensorflow": "TF"}[framework]
    with open(output, "w") as out:
        for key, value in settings.items():
            text = ";".join(map(str, value)) if isinstance(value, list) else str(value)
            out.write(f'set({prefix}_{key} "{text}")\n')


if __name__ == "__main__":
    main()
