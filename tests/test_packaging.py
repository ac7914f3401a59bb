"""The install itself: optional bindings, recorded framework versions, build switches."""
import ast
import glob
import os
import re
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


def oldest_python(path, pattern):
    with open(os.path.join(ROOT, path)) as f:
        return tuple(int(n) for n in re.search(pattern, f.read()).groups())


def evaluated_union_annotations(tree):
    """Annotations written X | Y that Python evaluates when the def runs: they need Python 3.10."""
    if any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body):
        return []  # from __future__ import annotations: never evaluated
    annotations = [n.annotation for n in ast.walk(tree) if isinstance(n, ast.arg) and n.annotation]
    annotations += [n.returns for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.returns]
    return [a for a in annotations if isinstance(a, ast.BinOp) and isinstance(a.op, ast.BitOr)]


def test_requires_python_is_the_oldest_python_the_code_runs_on():
    oldest = oldest_python("pyproject.toml", r'requires-python = ">=(\d+)\.(\d+)"')
    assert oldest_python("CMakeLists.txt", r"find_package\(Python (\d+)\.(\d+)") == oldest
    unions = []
    for path in glob.glob(os.path.join(ROOT, "python", "twinop", "**", "*.py"), recursive=True):
        with open(path) as f:
            tree = ast.parse(f.read(), feature_version=oldest)  # syntax newer than `oldest` fails here
        unions += [f"{os.path.relpath(path, ROOT)}:{a.lineno}" for a in evaluated_union_annotations(tree)]
    assert not unions or oldest >= (3, 10), f"X | Y annotations need Python 3.10: {unions}"


def test_import_twinop_imports_no_framework():
    result = run_python("""
        import sys, twinop, twinop.numpy
        print(sorted(m for m in ("torch", "tensorflow", "jax") if m in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module,framework,attr", [("torch", "torch", "TORCH_VERSION"), ("tf", "tensorflow", "TF_VERSION"),
                                                   ("jax", "jax", "JAX_VERSION")])
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


TORCH_AND_TF = """
    import numpy as np
    import twinop.numpy as tn
    {imports}
    x = np.random.default_rng(0).standard_normal((64, 33)).astype(np.float32)
    bias = np.linspace(-1, 1, 33, dtype=np.float32)
    from_numpy = tn.bias_act(x, bias, "gelu")
    from_torch = torch.ops.twinop.bias_act(torch.from_numpy(x), torch.from_numpy(bias), "gelu").numpy()
    from_tf = twinop.tf.bias_act(x, bias, "gelu").numpy()
    print(np.array_equal(from_torch, from_numpy), np.array_equal(from_tf, from_numpy))
"""
IMPORTS = {"torch": "import torch, twinop.torch", "tensorflow": "import tensorflow, twinop.tf"}


@pytest.mark.parametrize("first,second", [("torch", "tensorflow"), ("tensorflow", "torch")])
def test_torch_and_tensorflow_in_one_process_agree_bit_for_bit(first, second):
    """In a fresh process each, so that each import order is the one tested (in this process the
    order is whichever the collection of other test files happened to give)."""
    for module in ("torch", "tensorflow", "twinop.torch", "twinop.tf"):
        pytest.importorskip(module, exc_type=ImportError)  # skips where a binding was not built
    result = run_python(TORCH_AND_TF.format(imports=f"{IMPORTS[first]}; {IMPORTS[second]}"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["True", "True"]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
@pytest.mark.parametrize("switch,module", [("TWINOP_TORCH", "torch"), ("TWINOP_JAX", "jax")])
def test_switch_on_without_the_framework_fails_in_one_clear_line(tmp_path, switch, module):
    """A switch ON with a Python that cannot import its framework: one message, no CMake backtrace."""
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = subprocess.run(
        ["cmake", "-S", ROOT, "-B", str(tmp_path / "build"), "-G", "Ninja", "-DTWINOP_TORCH=OFF", "-DTWINOP_TF=OFF",
         "-DTWINOP_JAX=OFF", f"-D{switch}=ON", "-DTWINOP_CUDA=OFF", f"-DPython_EXECUTABLE={bare / 'bin' / 'python'}"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": "", "PYTHONNOUSERSITE": "1"})
    assert result.returncode != 0
    assert f"twinop: {switch}=ON, but" in result.stderr
    assert f"No module named '{module}'" in result.stderr
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


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm")
def test_torch_library_runs_its_chunks_on_torchs_openmp_threads():
    """at::parallel_for is inline: under torch's OpenMP backend it is an `omp parallel` region in
    the library's own code, serial unless the library is built with OpenMP (it then calls
    GOMP_parallel). Its OpenMP runtime must be torch's own: one libgomp in the process."""
    torch = pytest.importorskip("torch")
    path = os.path.join(os.path.dirname(twinop.__file__), "_twinop_torch.so")
    if not os.path.exists(path):
        pytest.skip("_twinop_torch.so was not built")
    listing = subprocess.run(["nm", "-D", "--undefined-only", path], capture_output=True, text=True, check=True).stdout
    openmp_backend = "ATen parallel backend: OpenMP" in torch.__config__.parallel_info()
    assert ("GOMP_parallel" in listing) == openmp_backend
    if not openmp_backend:
        return
    code = ("import torch, twinop.torch as tt; tt.bias_act(torch.ones(512, 512), torch.zeros(512)); "
            "print(*sorted({line.split()[-1] for line in open('/proc/self/maps') if 'libgomp' in line}), sep='\\n')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TWINOP_TORCH_ABI": "classic"})
    if run.returncode and "rebuild twinop" in run.stderr:
        pytest.skip("the classic library was built for another torch")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp.so.1")]


@pytest.mark.skipif(shutil.which("readelf") is None or shutil.which("nm") is None, reason="needs readelf and nm")
def test_jax_library_links_neither_jaxlib_nor_python():
    """XLA hands the handlers its FFI API in every call frame: the library needs only the C and
    C++ runtimes, and exports only its handlers and the argument check."""
    path = os.path.join(os.path.dirname(twinop.__file__), "_twinop_jax.so")
    if not os.path.exists(path):
        pytest.skip("_twinop_jax.so was not built")
    dynamic = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
    assert needed and all(re.match(r"(libstdc\+\+|libm|libgcc_s|libc|ld-linux[\w-]*)\.so", lib) for lib in needed), needed
    undefined = subprocess.run(["nm", "-D", "--undefined-only", "-C", path], capture_output=True, text=True,
                               check=True).stdout
    assert not re.search(r"xla::|\bPy\w|c10::|tensorflow::", undefined)
    exported = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1] for line in exported.splitlines() if " T " in line}
    ops = [f"TwinopBiasAct{op}" for op in ("", "Backward", "DoubleBackward")]
    ops += [f"Twinop{op}{part}" for op in ("RmsNorm", "AddRmsNorm") for part in ("", "Backward")]
    handlers = {op + platform for op in ops for platform in ("Cpu", "Cuda" if _build_info.WITH_CUDA else "Cpu")}
    assert names == handlers | {"TwinopBiasActCheckArgs", "TwinopRmsNormCheckArgs"}
