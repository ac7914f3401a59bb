"""The install itself: optional bindings, recorded framework versions, build switches."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import twinop
from twinop import _build_info, _loader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT)


def test_activations_are_the_documented_tuple():
    assert twinop.ACTIVATIONS == ("gelu", "gelu_tanh", "silu", "relu")


def test_import_twinop_imports_no_framework():
    result = run_python("""
        import sys, twinop, twinop.numpy
        print(sorted(m for m in ("torch", "tensorflow") if m in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module,framework,attr", [("torch", "torch", "TORCH_VERSION"), ("tf", "tensorflow", "TF_VERSION")])
def test_binding_built_for_another_version_refuses_to_load(module, framework, attr):
    pytest.importorskip(framework)
    if not getattr(_build_info, attr):
        pytest.skip(f"the {framework} op was not built")
    result = run_python(f"""
        import os, twinop._build_info as info
        os.environ["TWINOP_TORCH_ABI"] = "classic"  # the guarded library (else the stable-ABI one loads)
        info.{attr} = "0.0.1"  # as if built against another release
        try:
            import twinop.{module}
        except ImportError as error:
            print("ImportError:", error)
    """)
    assert "ImportError:" in result.stdout, result.stdout + result.stderr
    assert "built against" in result.stdout and "0.0.1" in result.stdout and "pip install" in result.stdout


def test_binding_not_built_says_how_to_rebuild():
    with pytest.raises(ImportError, match="without its torch op.*pip install"):
        _loader.library_path("torch", "", "2.0", "_twinop_torch.so")


def test_torch_and_tensorflow_in_one_process_agree_bit_for_bit():
    torch = pytest.importorskip("torch")
    pytest.importorskip("twinop.torch")
    ttf = pytest.importorskip("twinop.tf")
    import twinop.numpy as tn

    x = np.random.default_rng(0).standard_normal((64, 33)).astype(np.float32)
    bias = np.linspace(-1, 1, 33, dtype=np.float32)
    from_numpy = tn.bias_act(x, bias, "gelu")
    from_torch = torch.ops.twinop.bias_act(torch.from_numpy(x), torch.from_numpy(bias), "gelu").numpy()
    from_tf = ttf.bias_act(x, bias, "gelu").numpy()
    np.testing.assert_array_equal(from_torch, from_numpy)
    np.testing.assert_array_equal(from_tf, from_numpy)


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_switch_on_without_the_framework_fails_in_one_clear_line(tmp_path):
    """TWINOP_TORCH=ON with a Python that cannot import torch: one message, no CMake backtrace."""
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = subprocess.run(
        ["cmake", "-S", ROOT, "-B", str(tmp_path / "build"), "-G", "Ninja", "-DTWINOP_TORCH=ON", "-DTWINOP_TF=OFF",
         "-DTWINOP_CUDA=OFF", f"-DPython_EXECUTABLE={bare / 'bin' / 'python'}"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": "", "PYTHONNOUSERSITE": "1"})
    assert result.returncode != 0
    assert "twinop: TWINOP_TORCH=ON, but" in result.stderr
    assert "No module named 'torch'" in result.stderr
    assert "Call Stack" not in result.stderr


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm")
def test_no_binding_links_another_framework():
    """The torch library needs no TensorFlow symbol and the reverse: each loads alone."""
    def undefined_symbols(library):
        path = os.path.join(os.path.dirname(twinop.__file__), library)
        if not os.path.exists(path):
            pytest.skip(f"{library} was not built")
        listing = subprocess.run(["nm", "-D", "--undefined-only", "-C", path], capture_output=True, text=True, check=True)
        return listing.stdout

    torch_symbols, tf_symbols = undefined_symbols("_twinop_torch.so"), undefined_symbols("_twinop_tf.so")
    assert "c10::" in torch_symbols and "tensorflow::" not in torch_symbols
    assert "tensorflow::" in tf_symbols and "c10::" not in tf_symbols and "at::" not in tf_symbols
