"""The environment of a machine without a system CUDA toolkit, for the tests of the build's toolkit
choice (pip's or the system's)."""
import os


def without_system_cuda(env=os.environ):
    """`env` with no CUDA toolkit in sight: no directory holding nvcc on PATH, and no CUDA_HOME,
    CUDA_PATH or CUDACXX."""
    hidden = {k: v for k, v in env.items() if k not in ("CUDA_HOME", "CUDA_PATH", "CUDACXX")}
    hidden["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                     if not os.path.exists(os.path.join(d, "nvcc")))
    return hidden
