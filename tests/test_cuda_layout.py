"""The CUDA kernels' thread layout (cuda/vector_io.cuh, cuda/tile_launch.cuh) simulated on the host
for every thread of a launch, so it is checked where no GPU is: every element moved once,
vectors only where aligned, head and tail element-wise, and the column sums' order independent
of alignment (tests/cuda_layout_check.cu). Skipped where nvcc is missing."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")


def test_every_element_moved_once_and_vectors_aligned(tmp_path):
    program = tmp_path / "cuda_layout_check"
    subprocess.run(["nvcc", "-std=c++17", "-O2", "-I", os.path.join(ROOT, "cuda"),
                    os.path.join(ROOT, "tests", "cuda_layout_check.cu"), "-o", str(program)], check=True)
    result = subprocess.run([str(program)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().endswith("layouts checked")
