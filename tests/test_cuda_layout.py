"""The CUDA kernels' thread layouts simulated on the host for every thread of a launch, so they are
checked where no GPU is. bias_act's tiles (cuda/vector_io.cuh, cuda/tile_launch.cuh): every element
moved once, vectors only where aligned, head and tail element-wise, and the column sums' order
independent of alignment (tests/cuda_layout_check.cu). RMSNorm's rows (cuda/row_launch.cuh,
cuda/rms_norm_plan.cuh): plans that fit their kernels, every column and row held once, the
partial rows stored once, the workspace sized (tests/row_layout_check.cu). Skipped where nvcc is
missing."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")


def run_check(tmp_path, name):
    """Compiles and runs tests/NAME.cu; returns its output, asserting that it found no failure."""
    program = tmp_path / name
    subprocess.run(["nvcc", "-std=c++17", "-O2", "-I", os.path.join(ROOT, "cuda"), "-I", os.path.join(ROOT, "csrc", "core"),
                    os.path.join(ROOT, "tests", f"{name}.cu"), "-o", str(program)], check=True)
    result = subprocess.run([str(program)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    return result.stdout.strip()


def test_every_element_moved_once_and_vectors_aligned(tmp_path):
    assert run_check(tmp_path, "cuda_layout_check").endswith("layouts checked")


def test_row_plans_fit_their_kernels_and_hold_every_element_once(tmp_path):
    assert run_check(tmp_path, "row_layout_check").endswith("plans checked")
