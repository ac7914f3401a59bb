"""The PyTorch op library on the LibTorch stable ABI (_twinop_torch_stable.so): what makes it
portable (its symbol table holds no C++ symbol of torch, only C shim functions), how twinop.torch
picks between it and the classic library, that both register the same ops, that it does not
leak, and the whole torch test suite run on it (TWINOP_TORCH_ABI=stable)."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
tt = pytest.importorskip("twinop.torch", exc_type=ImportError)

from twinop import _build_info  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.dirname(os.path.dirname(tt.__file__))
STABLE = os.path.join(PACKAGE, "_twinop_torch_stable.so")
TORCH_LIB = os.path.join(os.path.dirname(torch.__file__), "lib")
# Every test file that runs the torch ops (tests/test_double_backward.py also numpy's and TF's).
TORCH_SUITE = ["tests/test_torch.py", "tests/test_torch_autodiff.py", "tests/test_torch_integration.py",
               "tests/test_out.py", "tests/test_double_backward.py", "tests/test_cuda.py", "tests/test_torch_stable.py"]

needs_stable = pytest.mark.skipif(not _build_info.TORCH_STABLE_TARGET, reason="the stable-ABI op was not built")


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env})


def symbols(path, *options):
    listing = subprocess.run(["nm", "-D", *options, path], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].split("@")[0] for line in listing.splitlines() if line.strip()}


def test_the_library_asked_for_is_loaded():
    """TWINOP_TORCH_ABI picks the library; unset, the classic one when built for this torch."""
    classic_here = _build_info.TORCH_VERSION == torch.__version__
    assert tt.ABI == (os.environ.get("TWINOP_TORCH_ABI") or ("classic" if classic_here else "stable"))


@needs_stable
def test_stable_library_uses_no_cpp_symbol_of_torch():
    """The proof of portability: every symbol the dynamic linker must find in torch is a C function
    of its shim (aoti_torch_*, torch_*), none a C++ symbol of torch, at or c10, whose ABI changes
    between releases; and the only torch library it needs is libtorch_cpu.so, the shim's home.
    (torch's libraries also export instances of standard-library templates, std::: those are
    libstdc++'s ABI, not torch's.)"""
    undefined = sorted(symbols(STABLE, "--undefined-only"))
    demangled = dict(zip(undefined, subprocess.run(["c++filt"], input="\n".join(undefined), capture_output=True,
                                                   text=True, check=True).stdout.splitlines()))
    assert [name for name in demangled.values() if re.search(r"\b(c10|at|torch|caffe2)::", name)] == []
    from_torch = set(undefined) & set().union(*(symbols(os.path.join(TORCH_LIB, lib), "--defined-only")
                                              for lib in os.listdir(TORCH_LIB) if lib.endswith(".so")))
    c_functions = {s for s in from_torch if re.fullmatch(r"(aoti_torch|torch)_\w+", s)}
    assert len(c_functions) > 20, "too few shim functions: the symbols were not read"
    assert sorted(demangled[s] for s in from_torch - c_functions if not demangled[s].startswith("std::")) == []
    dynamic = subprocess.run(["readelf", "-d", STABLE], capture_output=True, text=True, check=True).stdout
    needed = set(re.findall(r"\(NEEDED\).*\[(.+)\]", dynamic))
    assert "libtorch_cpu.so" in needed and not needed & {"libc10.so", "libtorch.so", "libtorch_python.so"}


@needs_stable
def test_stable_library_loads_where_the_classic_one_is_refused():
    """As after a torch upgrade: the classic library's version guard refuses it, the stable one loads."""
    result = run_python("""
        import twinop._build_info as info
        info.TORCH_VERSION = "0.0.1"  # as if built against another torch
        import torch, twinop.torch as tt
        print(tt.ABI, tt.bias_act(torch.tensor([[-1.0, 2.0]]), torch.zeros(2), "relu").tolist())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "stable [[0.0, 2.0]]"


@pytest.mark.parametrize("abi,patch,message", [
    ("classic", 'info.TORCH_VERSION = ""', "twinop was installed without its torch op"),
    ("classic", 'info.TORCH_VERSION = "0.0.1"', "twinop's torch op was built against torch 0.0.1"),
    ("stable", 'info.TORCH_STABLE_TARGET = ""', "twinop was installed without its torch stable-ABI op"),
    ("stable", 'info.TORCH_STABLE_TARGET = "99.0"', "loads in torch 99.0 or later"),
    ("newest", "", "TWINOP_TORCH_ABI must be one of classic, stable (or unset); got 'newest'"),
])
def test_an_unavailable_library_asked_for_is_a_clear_import_error(abi, patch, message):
    if "0.0.1" in patch and not _build_info.TORCH_VERSION:
        pytest.skip("the classic op was not built: its version guard is not reached")
    result = run_python(f"""
        import twinop._build_info as info
        {patch}
        try:
            import twinop.torch
        except ImportError as error:
            print(error)
    """, TWINOP_TORCH_ABI=abi)
    assert message in result.stdout, result.stdout + result.stderr
    assert abi == "newest" or "pip install" in result.stdout  # says how to rebuild


def test_no_library_loadable_names_both_reasons():
    result = run_python("""
        import twinop._build_info as info
        info.TORCH_VERSION, info.TORCH_STABLE_TARGET = "", ""
        try:
            import twinop.torch
        except ImportError as error:
            print(error)
    """, TWINOP_TORCH_ABI="")
    assert "classic: twinop was installed without its torch op" in result.stdout, result.stdout + result.stderr
    assert "stable: twinop was installed without its torch stable-ABI op" in result.stdout


SCHEMAS = """
    import torch, twinop.torch
    for name in ("bias_act", "bias_act_backward", "bias_act_double_backward"):
        packet = getattr(torch.ops.twinop, name)
        for overload in sorted(packet.overloads()):
            print(getattr(packet, overload)._schema)
"""


@needs_stable
@pytest.mark.skipif(not _build_info.TORCH_VERSION, reason="the classic op was not built")
def test_both_libraries_register_the_same_schemas():
    classic, stable = (run_python(SCHEMAS, TWINOP_TORCH_ABI=abi) for abi in ("classic", "stable"))
    assert classic.returncode == 0 and stable.returncode == 0, classic.stderr + stable.stderr
    assert stable.stdout == classic.stdout and classic.stdout.count("twinop::") == 5  # 3 ops, 2 out= overloads


@needs_stable
def test_string_argument_is_not_leaked():
    """The `str act` argument, read through TORCH_BOX's std::string_view conversion, would lose
    48 bytes a call (torch 2.13's headers); the stable kernels read and free its handle themselves."""
    result = run_python("""
        import ctypes, torch, twinop.torch
        class MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in
                        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = MallInfo2
        x, bias, calls = torch.ones(2, 3), torch.zeros(3), 20000
        for _ in range(100):
            torch.ops.twinop.bias_act(x, bias, "gelu")
        before = mallinfo2().uordblks
        for _ in range(calls):
            torch.ops.twinop.bias_act(x, bias, "gelu")
        print((mallinfo2().uordblks - before) / calls)
    """, TWINOP_TORCH_ABI="stable")
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 2, f"{result.stdout.strip()} bytes kept per call"


@needs_stable
@pytest.mark.skipif(bool(os.environ.get("TWINOP_TORCH_ABI")), reason="this is the run on a chosen library")
def test_torch_suite_passes_on_the_stable_library():
    """Every torch test, with the stable-ABI library loaded instead of the classic one."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TORCH_SUITE],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TWINOP_TORCH_ABI": "stable"})
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and " passed" in summary, result.stdout[-5000:] + result.stderr[-2000:]


RELIABILITY_SUITE = ["tests/test_properties.py", "tests/test_hostile_args.py", "tests/test_threads.py",
                     "tests/test_leaks.py"]


@needs_stable
@pytest.mark.skipif(bool(os.environ.get("TWINOP_TORCH_ABI")), reason="this is the run on a chosen library")
def test_reliability_checks_pass_on_the_stable_library():
    """The property, hostile-argument, thread and leak checks of the torch binding, on the
    stable-ABI library."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "torch",
                             *RELIABILITY_SUITE],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TWINOP_TORCH_ABI": "stable"})
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and " passed" in summary, result.stdout[-5000:] + result.stderr[-2000:]
