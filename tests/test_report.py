"""`twinop report`: the line counter, the role table, the build settings reader and the verdicts
on known inputs, then the whole report end to end at its smallest size."""
import importlib.util
import json
import os

import pytest

from twinop import _build_info, cli
from twinop.report import ALL_BUILDS, boilerplate, build_friction, portability, render, runtime, support, verdicts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cpp_lines_leave_out_comments_and_blank_lines():
    source = (
        "// a comment\n"
        "#include <x.h>  // trailing comment\n"
        "\n"
        "/* a block\n"
        "   over lines */\n"
        "int a = 1; /* inline */ int b = 2;\n"
        "const char* s = \"// not a comment /* nor this */\";\n"
        "   /* only a comment */   \n"
        "char c = '\"';\n"
        "}\n"
    )
    assert boilerplate.count_cpp(source) == 5


def test_python_lines_leave_out_comments_docstrings_and_blank_lines():
    source = (
        '"""Module docstring,\n'
        'over two lines."""\n'
        "import os  # trailing comment\n"
        "\n"
        "# a comment\n"
        "def f(x):\n"
        "    '''Function docstring.'''\n"
        "    text = '''a string that is code,\n"
        "    not a docstring'''\n"
        "    return x\n"
    )
    assert boilerplate.count_python(source) == 5


def test_every_binding_source_has_a_role():
    """A new file under a binding folder must be named in ROLES, or the counts would silently miss it."""
    assert boilerplate.unlisted_files(ROOT) == []


def test_counts_skip_missing_files_and_flag_unlisted_ones(tmp_path):
    (tmp_path / "csrc" / "torch").mkdir(parents=True)
    (tmp_path / "csrc" / "torch" / "bias_act_ops.cpp").write_text("// schema\nint x;\n")
    (tmp_path / "csrc" / "torch" / "extra.cpp").write_text("int y;\n")
    result = boilerplate.measure(str(tmp_path))
    table = result["ops"]["bias_act"]
    assert list(table) == ["torch"] and table["torch"]["registration"] == {"lines": 1}
    assert table["torch"]["buffer-reuse"]["status"] == boilerplate.NOT_POSSIBLE  # WITHOUT_LINES says why
    assert table["torch"]["wrapper"] == {"status": "unaccounted for",
                                         "why": "no lines, and WITHOUT_LINES does not say why"}
    assert "csrc/torch/bias_act_binding.h" in result["missing"]
    assert result["unlisted"] == ["csrc/torch/extra.cpp"]


SPLIT = """// a file of the kernel wrapper
int a;
// twinop-feature: out
int b; int c;
int d;
// twinop-feature: mixed-precision (torch-stable)
int e;
// twinop-feature: end
int f;
// twinop-feature: no-such-feature
int g;
// twinop-feature: out (tensorflow)
int h;
"""
SPLIT_PYTHON = '''x = 1
# twinop-feature: gradient
def f():
    """Docstring."""
    return 2
'''


def test_feature_lines_split_a_file_exactly():
    """Each code line goes to the feature (and bindings) of the twinop-feature line above it, the
    file's own before the first and after `end`; a line naming an unknown feature or a binding the
    file does not serve is reported, and its lines stay with the feature before."""
    parts, problems = boilerplate.split_by_feature(SPLIT, False, boilerplate.Role(boilerplate.TORCH, "wrapper"))
    assert parts == {("wrapper", boilerplate.TORCH): 4, ("out", boilerplate.TORCH): 2,
                     ("mixed-precision", ("torch-stable",)): 1}
    assert problems == ["line 10: // twinop-feature: no-such-feature", "line 12: // twinop-feature: out (tensorflow)"]
    assert boilerplate.split_by_feature(SPLIT_PYTHON, True, boilerplate.Role(("torch",), "loader"))[0] == {
        ("loader", ("torch",)): 1, ("gradient", ("torch",)): 2}


def test_every_feature_of_every_binding_is_counted_or_explained():
    """In this checkout: no marker problems, every cell lines or a reason, and no reason given for
    a feature that does have lines (WITHOUT_LINES would be stale)."""
    result = boilerplate.measure(ROOT)
    assert result["marker_problems"] == {} and result["missing"] == []
    for op, table in result["ops"].items():
        for binding, cells in table.items():
            for feature, cell in cells.items():
                assert cell.get("status") != "unaccounted for", (op, binding, feature)
                assert not ("lines" in cell and (binding, feature) in boilerplate.WITHOUT_LINES), (binding, feature)
    shared = [f for f in result["files"] if f["path"] == "python/twinop/torch/_checks.py"]
    assert shared[0]["bindings"] == ["torch", "torch-stable"]  # twinop.torch.bias_act uses it with both libraries


def test_counts_without_sources_say_so():
    assert boilerplate.measure(None) == {"available": False, "reason": "sources not available (no csrc/ under None)"}


def test_build_settings_are_what_the_binding_adds_to_the_core():
    core = {"compileGroups": [{"language": "CXX", "compileCommandFragments": [{"fragment": "-O3 -fPIC"}],
                               "includes": [{"path": "/src/csrc/core"}]}], "sources": []}
    graph = {"commands": ["target_include_directories", "target_compile_options"], "files": ["CMakeLists.txt"],
             "nodes": [{"file": 0}, {"file": 0, "line": 10, "command": 0, "parent": 0},
                       {"file": 0, "line": 11, "command": 1, "parent": 0}]}
    tf = {
        "compileGroups": [{
            "language": "CXX", "languageStandard": {"standard": "17", "backtraces": [2]},
            "compileCommandFragments": [{"fragment": "-O3 -fPIC"}, {"fragment": "-D_GLIBCXX_USE_CXX11_ABI=1", "backtrace": 2}],
            "defines": [{"define": "_twinop_tf_EXPORTS"}],
            "includes": [{"path": "/src/csrc/core"}, {"path": "/env/tf/include", "isSystem": True, "backtrace": 1}]}],
        "link": {"commandFragments": [{"fragment": "libtwinop_core.a", "role": "libraries"},
                                      {"fragment": "-Wl,-rpath,/env/tf", "role": "libraries"},
                                      {"fragment": "-L/env/tf", "role": "libraries", "backtrace": 2},
                                      {"fragment": "-l:libtensorflow_framework.so.2", "role": "libraries", "backtrace": 2}]},
        "sources": [{"path": "/build/CMakeFiles/_twinop_tf.dir/Unity/unity_0_cxx.cxx", "compileGroupIndex": 0}],
        "backtraceGraph": graph,
    }
    settings, workarounds = build_friction.binding_settings({"twinop_core": core, "_twinop_tf": tf}, "_twinop_tf")
    assert [(s["kind"], s["value"]) for s in settings] == [
        ("C++ standard", "C++17"), ("ABI define", "-D_GLIBCXX_USE_CXX11_ABI=1"),
        ("system include (warnings silenced)", "/env/tf/include"), ("library dir", "-L/env/tf"),
        ("library", "-l:libtensorflow_framework.so.2")]
    assert settings[2]["where"] == "CMakeLists.txt:10 (target_include_directories)"
    assert len(workarounds) == 2 and workarounds[0].startswith("unity build") and "SYSTEM" in workarounds[1]


def test_error_clarity_scores_what_the_message_names():
    assert verdicts.error_clarity("x must be float32, float64, float16 or bfloat16; got Int", "int32") == {
        "names_argument": True, "names_dtype": True, "lists_allowed": True}
    assert verdicts.error_clarity("Value for attr 'T' of int32 is not in the list of allowed values: float, double, half, bfloat16",
                                  "int32") == {"names_argument": False, "names_dtype": True, "lists_allowed": True}


def feature_results(torch, tf, extra_torch=0):
    """A boilerplate axis whose op has PyTorch and TensorFlow lines per feature ({feature: lines}),
    every other feature provided by the framework, and batching, which PyTorch has (extra_torch
    lines) or did not build and TensorFlow cannot have."""
    def cells(lines, absent):
        table = {f: {"lines": n} for f, n in lines.items()}
        table.update({f: {"status": status, "why": "reason"} for f, status in absent.items()})
        for feature in boilerplate.FEATURES:
            table.setdefault(feature, {"status": boilerplate.PROVIDED, "why": "reason"})
        return table

    torch_cells = cells({**torch, "batching": extra_torch} if extra_torch else torch,
                        {} if extra_torch else {"batching": boilerplate.NOT_BUILT})
    tf_cells = cells(tf, {"batching": boilerplate.NOT_POSSIBLE})
    return {"boilerplate": {"available": True, "core": {"shared core (C++)": 500},
                            "ops": {"bias_act": {"torch": torch_cells, "tensorflow": tf_cells}}}}


@pytest.mark.parametrize("torch,tf,expected", [
    ({"registration": 10, "wrapper": 100, "shapes": 20}, {"registration": 50, "wrapper": 110, "shapes": 70}, "holds"),
    ({"registration": 10, "wrapper": 200, "shapes": 20}, {"registration": 50, "wrapper": 110, "shapes": 70}, "partly"),
    ({"registration": 40, "wrapper": 100, "shapes": 20}, {"registration": 30, "wrapper": 200, "shapes": 10}, "partly"),
    ({"registration": 10, "wrapper": 100, "shapes": 80}, {"registration": 10, "wrapper": 100, "shapes": 80},
     "does not hold")])
def test_boilerplate_verdict_judges_the_features_both_have(torch, tf, expected):
    """TensorFlow needs more when its total on the shared features is 1.10x PyTorch's and it takes
    1.10x more in more of them; partly when only one is so. A feature only PyTorch has (batching,
    1000 lines here) counts in the all-features totals, not in the verdict."""
    verdict = verdicts.boilerplate(feature_results(torch, tf, extra_torch=1000))
    assert verdict["verdict"] == expected
    numbers = verdict["numbers"]["ops"]["bias_act"]
    assert "batching" not in numbers["features"]
    assert numbers["torch_lines"] == sum(torch.values())
    assert numbers["all_features"]["torch"] == sum(torch.values()) + 1000


def test_boilerplate_verdict_counts_a_provided_feature_as_zero_lines():
    torch, tf = {"registration": 10, "wrapper": 100, "compiled": 30}, {"registration": 50, "wrapper": 110}
    verdict = verdicts.boilerplate(feature_results(torch, tf))  # TF's compiled: provided
    numbers = verdict["numbers"]["ops"]["bias_act"]
    assert "compiled" in numbers["features"] and numbers["more_lines"]["torch"] == ["compiled"]
    assert numbers["ratio"] == 1.14 and verdict["verdict"] == "partly"  # one feature each way


def test_boilerplate_verdict_without_sources_is_not_settled():
    assert verdicts.boilerplate({"boilerplate": {"available": False, "reason": "sources not available"}})["verdict"] == "not settled"


def test_feature_table_shows_why_a_cell_has_no_lines():
    data = feature_results({"registration": 10, "wrapper": 100}, {"registration": 50, "wrapper": 110})["boilerplate"]
    text = "\n".join(render.feature_table(data, "bias_act"))
    assert "| op/schema registration | 10 | 50 |" in text
    assert "| batching (vmap / pfor) | – not built [1] | – not possible in this framework [1] |" in text
    assert "[1] reason" in text
    both = len(boilerplate.FEATURES) - 1  # all but batching
    assert f"| **total, the {both} features PyTorch and TensorFlow both have** | **110** |" in text


CLEAR = "TypeError: x must be float32, float64, float16 or bfloat16; got int32"


SPARSE_ERROR = ("NotImplementedError: Could not run 'twinop::bias_act' with arguments from the 'SparseCPU' backend. "
                "'twinop::bias_act' is only available for these backends: [CPU, Meta, BackendSelect]")
XLA_ERROR = ("InvalidArgumentError: Detected unsupported operations when trying to compile graph on XLA_CPU_JIT: "
             "Twinop>BiasAct (No registered 'Twinop>BiasAct' OpKernel for XLA_CPU_JIT devices compatible with node)")
DTYPES = ["float32", "float64", "float16", "bfloat16"]


def support_results(devices, torch_error=CLEAR, tf_error=CLEAR, torch_backend_error=SPARSE_ERROR,
                    tf_backend_error=XLA_ERROR, torch_declares=None):
    """The support axis as measured: call cells on `devices`, the error on a backend without a
    kernel, and each registry built with CUDA (TensorFlow's declaring and listing its dtypes)."""
    def cells(api, error):
        out = []
        for device in ("cpu", "cuda"):
            for dtype in ("float32", "float64", "float16", "bfloat16", "int32"):
                if device not in devices:
                    out.append({"api": api, "device": device, "dtype": dtype, "status": "not available here"})
                elif dtype == "int32":
                    out.append({"api": api, "device": device, "dtype": dtype, "status": "unsupported", "error": error})
                else:
                    out.append({"api": api, "device": device, "dtype": dtype, "status": "supported"})
        return out

    def registry(name, signature, declared, devices):
        return {"built_with_cuda": True, "ops": {name: {"signature": signature, "declared_dtypes": declared,
                                                        "kernels": {d: declared for d in devices}}}}

    return {"support": {
        "frameworks": {
            "torch": {"cells": cells("torch eager", torch_error),
                      "backends": [{"backend": "SparseCPU", "status": "error", "error": torch_backend_error}]},
            "tensorflow": {"cells": cells("tf eager", tf_error),
                           "backends": [{"backend": "XLA_CPU_JIT", "status": "error", "error": tf_backend_error}]}},
        "registry": {"cuda": "built with CUDA", "frameworks": {
            "torch": registry("twinop::bias_act", "twinop::bias_act(Tensor x, Tensor bias, str act) -> Tensor",
                              torch_declares, ("CPU", "CUDA", "Meta")),
            "tensorflow": registry("Twinop>BiasAct", "T: {float32, float64, float16, bfloat16}", DTYPES,
                                   ("CPU", "GPU"))}}}}


def test_support_verdict_on_a_cpu_only_machine():
    """TensorFlow ahead on (a) and (b); its XLA error does not name a device that has a kernel,
    PyTorch's sparse one does: behind on (c). Each part flips the verdict."""
    partly = verdicts.support(support_results({"cpu"}))
    assert partly["verdict"] == "partly"
    numbers = partly["numbers"]["ops"]["bias_act"]
    assert numbers["ahead"] == ["(a) dtypes declared", "(b) registry"]
    assert numbers["behind"] == ["(c) errors"] and numbers["devices_both_see"] == ["cpu"]
    assert "(b) registry 2 vs 1/2, from a build with CUDA: TensorFlow cpu (float32" in partly["summary"]
    assert "PyTorch cpu (no dtypes listed), cuda (no dtypes listed), meta (no dtypes listed)" in partly["summary"]
    assert "not measured here: the GPU kernels running" in partly["summary"]
    clear_xla = XLA_ERROR + " Registered: device='CPU'"
    assert verdicts.support(support_results({"cpu"}, tf_backend_error=clear_xla))["verdict"] == "holds"
    torch_declares = support_results({"cpu"}, tf_backend_error=clear_xla, torch_declares=DTYPES)
    assert verdicts.support(torch_declares)["verdict"] == "does not hold"  # a tie on every part


def test_support_verdict_counts_what_runs_on_the_devices_both_see():
    vague = "InvalidArgumentError: bad attr T of int32"
    behind = verdicts.support(support_results({"cpu", "cuda"}, tf_error=vague))
    numbers = behind["numbers"]["ops"]["bias_act"]
    assert numbers["tensorflow"]["error_score"] == 1 and behind["verdict"] == "partly"
    assert numbers["parts"]["(d) runs"] == {"torch": 8, "tensorflow": 8}
    assert "not measured here" not in behind["summary"]


def test_support_verdict_without_a_registry_is_not_settled():
    results = support_results({"cpu"})
    del results["support"]["registry"]
    assert verdicts.support(results)["verdict"] == "not settled"


def test_backend_error_clarity():
    assert verdicts.backend_error_clarity(SPARSE_ERROR, "torch", "SparseCPU") == {
        "names_op": True, "names_backend": True, "names_a_device_with_a_kernel": True}
    assert verdicts.backend_error_clarity(XLA_ERROR, "tensorflow", "XLA_CPU_JIT") == {
        "names_op": True, "names_backend": True, "names_a_device_with_a_kernel": False}


def build_results(include="/env/lib/site-packages/torch/include", ok=True):
    def binding(path):
        return {"ok": ok, "stage": "build", "error": "c++: fatal error", "tools": {"C++ compiler": "/usr/bin/c++"},
                "settings": [{"kind": "system include", "value": path, "where": "CMakeLists.txt:1"}]}
    return {"build": {"available": True, "failures": {},
                      "environment": {"prefix": "/env", "base_prefix": "/python", "source_dir": "/src"},
                      "bindings": {"torch": binding(include), "tensorflow": binding("/env/lib/site-packages/tensorflow/include")}}}


def test_pip_only_verdict():
    holds = verdicts.pip_only(build_results())
    assert holds["verdict"] == "holds" and "C++ compiler /usr/bin/c++" in holds["summary"]
    assert verdicts.pip_only(build_results(include="/usr/include/torch"))["verdict"] == "does not hold"
    assert verdicts.pip_only(build_results(ok=False))["verdict"] == "does not hold"
    assert verdicts.pip_only({"build": {"available": True, "bindings": {"numpy": {}}}})["verdict"] == "not settled"


PORTABILITY = {
    "available": True,
    "torch": {"loads": False, "how": "ImportError: built against torch 0.0.1", "framework_cpp_symbols": 300,
              "c_shim_functions": 0},
    "torch-stable": {"loads": True, "how": "loaded with the classic library refused", "framework_cpp_symbols": 0,
                     "c_shim_functions": 55},
    "tensorflow": {"loads": False, "how": "ImportError: built against tensorflow 0.0.1", "framework_cpp_symbols": 120,
                   "c_shim_functions": 0},
}


def test_pip_only_verdict_says_what_survives_a_framework_upgrade():
    results = build_results()
    assert "upgrade" not in verdicts.pip_only(results)["summary"]  # not measured, not claimed
    results["build"]["portability"] = PORTABILITY
    verdict = verdicts.pip_only(results)
    assert verdict["verdict"] == "holds"
    assert ("neither classic route survives: torch's is refused (300 C++ symbols of torch imported) and TensorFlow's "
            "is refused (120 C++ symbols of TensorFlow imported)") in verdict["summary"]
    assert "PyTorch's stable ABI survives it (0 C++ symbols of torch imported, 55 C shim functions" in verdict["summary"]
    assert verdict["summary"].endswith("TensorFlow has no stable ABI")
    results["build"]["portability"] = {**PORTABILITY, "torch-stable": {**PORTABILITY["torch-stable"], "loads": False}}
    assert "was meant to, but did not load here" in verdicts.pip_only(results)["summary"]


def test_portability_table_has_a_column_per_library():
    table = "\n".join(render.portability(PORTABILITY, str))
    assert "|  | torch | torch (stable ABI) | tensorflow |" in table
    assert "| loads under another version of its framework | no: ImportError: built against torch 0.0.1 | yes: " in table
    assert "| 0 (and 55 C shim functions) |" in table


@pytest.mark.skipif(not _build_info.TORCH_STABLE_TARGET, reason="the stable-ABI op was not built")
def test_portability_of_the_installed_torch_libraries():
    pytest.importorskip("twinop.torch", exc_type=ImportError)
    guard = {"torch": {"mismatch": {"message": "ImportError: twinop's torch op was built against torch 0.0.1"}}}
    measured = portability.measure(("torch", "torch-stable"), guard)
    stable = measured["torch-stable"]
    assert stable["loads"] and "classic library refused" in stable["how"]
    assert stable["framework_cpp_symbols"] == 0 and stable["c_shim_functions"] > 20
    if _build_info.TORCH_VERSION:
        assert not measured["torch"]["loads"] and measured["torch"]["framework_cpp_symbols"] > 20


def runtime_results(torch_ms, tf_ms, torch_allocating_ms=None, own=(None, None)):
    """A runtime axis with twinop's PyTorch op (into out=, and as called), its TF op (in a function
    of one call, per op in a function of several, and eager: tf_ms each), and each framework's own
    composition: the fastest TF form (XLA) own[0] ms, PyTorch's (eager) own[1], by default as the kernel."""
    tf_own, torch_own = own[0] or tf_ms, own[1] or torch_ms
    times = (("twinop-torch-out", torch_ms), ("twinop-tf-function", tf_ms), ("twinop-tf-chain", tf_ms),
             ("twinop-tf-eager", tf_ms), ("twinop-torch", torch_allocating_ms or torch_ms), ("tf-xla", tf_own),
             ("tf-function", 3 * tf_own), ("torch-eager", torch_own), ("torch-compile", 2 * torch_own))
    rows = [{"impl": impl, "dtype": "float32", "shape": shape, "pass": pass_, "median_ms": ms * shape[0] / 1024}
            for impl, ms in times for shape in ([8, 64], [4096, 4096]) for pass_ in ("fwd", "fwd+bwd")]
    return {"runtime": {"available": True, "runs": [{"device": "cpu", "rows": rows}]}}


@pytest.mark.parametrize("tf_ms,own,expected", [(1.2, (None, None), "holds"), (1.2, (3.0, 1.0), "partly"),
                                                (1.3, (1.0, 1.0), "partly"), (1.3, (0.7, 1.0), "does not hold")])
def test_speed_verdict_judges_the_kernel_per_op_and_each_frameworks_own_composition(tf_ms, own, expected):
    verdict = verdicts.speed(runtime_results(1.0, tf_ms, torch_allocating_ms=3.0, own=own))
    assert verdict["verdict"] == expected
    numbers = verdict["numbers"]["ops"]["bias_act"]
    kernel, composed = numbers["kernel_pairs"][0], numbers["own_pairs"][0]
    assert (kernel["tf_impl"], kernel["torch_impl"], kernel["tf_over_torch"]) == ("twinop-tf-chain", "twinop-torch-out",
                                                                                tf_ms)
    assert (composed["tf_impl"], composed["torch_impl"]) == ("tf-xla", "torch-eager")  # the fastest forms
    eager = numbers["eager_pairs"][0]  # not judged: PyTorch's call allocates
    assert (eager["tf_impl"], eager["torch_impl"], eager["tf_over_torch"]) == ("twinop-tf-eager", "twinop-torch",
                                                                              round(tf_ms / 3, 3))


def test_speed_verdict_without_both_comparisons_is_not_settled():
    assert verdicts.speed({"runtime": {"available": False, "reason": "the runtime module is missing"}})["verdict"] == "not settled"
    results = runtime_results(1.0, 1.2)
    results["runtime"]["runs"][0]["rows"] = [r for r in results["runtime"]["runs"][0]["rows"]
                                             if r["impl"] not in ("tf-xla", "tf-function")]
    unsettled = verdicts.speed(results)
    assert unsettled["verdict"] == "not settled" and "each framework's own composition" in unsettled["summary"]


def test_the_fixed_cost_of_a_tf_function_call_from_one_call_and_a_chain():
    run = runtime_results(1.0, 1.2)["runtime"]["runs"][0]
    for row in run["rows"]:
        if row["impl"] == "twinop-tf-function":
            row["median_ms"] += 0.3  # T1 = q + 0.3: four calls share what one pays alone
    assert [c["fixed_ms"] for c in verdicts.fixed_call_cost(run)] == [pytest.approx(0.4)] * 2  # 4 (T1 - q) / 3
    assert "float32 fwd 0.4 ms (T1 5.1, q 4.8)" in "\n".join(render.fixed_cost_lines(run))


def with_rounds(results, *ratios):
    """results whose run also timed the kernel pair in rounds: PyTorch 1 ms, TensorFlow `ratio` ms per op."""
    run = results["runtime"]["runs"][0]
    run["rounds"] = [[{"impl": impl, "dtype": "float32", "shape": [4096, 4096], "pass": pass_, "median_ms": ms}
                      for impl, ms in (("twinop-torch-out", 1.0), ("twinop-tf-chain", ratio))
                      for pass_ in ("fwd", "fwd+bwd")] for ratio in ratios]
    return results


def test_speed_verdict_judges_the_median_of_the_rounds_where_a_run_has_them():
    verdict = verdicts.speed(with_rounds(runtime_results(1.0, 1.5, own=(1.0, 1.0)), 1.1, 1.4, 0.9))  # one run: 1.5x
    pair = verdict["numbers"]["ops"]["bias_act"]["kernel_pairs"][0]
    assert verdict["verdict"] == "holds" and (pair["tf_over_torch"], pair["rounds"]) == (1.1, 3)
    assert pair["round_ratios"] == [1.1, 1.4, 0.9] and "1.10x [1.10, 1.40, 0.90]" in verdict["summary"]
    assert verdicts.speed(with_rounds(runtime_results(1.0, 1.0), 1.3, 1.4, 0.9))["verdict"] == "partly"
    just_outside = verdicts.speed(with_rounds(runtime_results(1.0, 1.0), 1.254, 1.254, 1.254))  # not "1.25x" outside 1.25x
    assert just_outside["verdict"] == "partly" and "fwd 1.254x [1.25, 1.25, 1.25]" in just_outside["summary"]
    table = "\n".join(render.rounds_table(with_rounds(runtime_results(1.0, 1.0), 1.3, 1.4, 0.9)["runtime"]["runs"][0]))
    assert "| twinop-tf-chain | float32 | fwd | 1.3, 1.4, 0.9 | 1.3 | 1.30x |" in table
    assert "| twinop-torch-out | float32 | fwd | 1, 1, 1 | 1 | 1.00x |" in table


def test_allocation_finding_reports_the_share_and_its_reading():
    finding = verdicts.allocation(runtime_results(1.0, 1.2, torch_allocating_ms=4.0))
    torch_fwd = next(i for i in finding["numbers"]["items"] if (i["binding"], i["pass"]) == ("twinop-torch", "fwd"))
    assert finding["verdict"] == "measured" and torch_fwd["allocation_share"] == 0.75
    assert "75% / 75% of the call is allocation" in finding["summary"]
    assert "page faults on fresh memory" in finding["summary"]  # 4096 x 4096 float32: 64 MiB blocks
    assert "twinop-tf-function 4.8 / 4.8 as called (no out=)" in finding["summary"]  # its page faults not counted
    assert "TensorFlow's allocator keeps its memory" not in finding["summary"]  # said only where measured
    quiet = verdicts.allocation(runtime_results(1.0, 1.2, torch_allocating_ms=1.05))
    assert "page faults" not in quiet["summary"]


def with_page_faults(results, jax_fwd_ms):
    """results with page faults counted at the largest size (PyTorch as called: fresh memory; the
    rest reused) and twinop's JAX op, fresh memory too, at jax_fwd_ms forward."""
    rows = results["runtime"]["runs"][0]["rows"]
    for row in rows:
        if row["shape"] == [4096, 4096]:
            row["page_faults"] = 16385 if row["impl"] == "twinop-torch" else 2
    rows += [{"impl": "twinop-jax-jit", "dtype": "float32", "shape": [4096, 4096], "pass": pass_, "median_ms": ms,
              "page_faults": 16385} for pass_, ms in (("fwd", jax_fwd_ms), ("fwd+bwd", 3 * jax_fwd_ms))]
    return results


def test_allocation_finding_reads_the_page_faults_of_a_binding_without_out():
    finding = verdicts.allocation(with_page_faults(runtime_results(1.0, 1.2, torch_allocating_ms=4.0), 20.0))
    assert "twinop-tf-function 4.8 / 4.8 as called (no out=; its allocator keeps its memory: 2 / 2 page faults a call)" \
        in finding["summary"] and "TensorFlow's allocator keeps its memory" in finding["summary"]
    onednn_off = with_page_faults(runtime_results(1.0, 1.2, torch_allocating_ms=4.0), 20.0)
    for row in onednn_off["runtime"]["runs"][0]["rows"]:  # TF_ENABLE_ONEDNN_OPTS=0: TF's outputs are fresh memory too
        if row["impl"] == "twinop-tf-function" and "page_faults" in row:
            row["page_faults"] = 16385
    fresh_tf = verdicts.allocation(onednn_off)["summary"]
    assert "TensorFlow's allocator keeps its memory" not in fresh_tf
    assert "twinop-tf-function 4.8 / 4.8 as called (no out=; 16385 / 16385 page faults a call: its outputs are fresh" in fresh_tf
    assert ("twinop-jax-jit 20 / 60 as called (no out=; 16385 / 16385 page faults a call: its outputs are fresh "
            "memory on every call)") in finding["summary"]
    assert ("twinop-jax-jit (bias_act) has no out= and its framework gives each output fresh memory (16385 page "
            "faults a call): 20 ms forward, against 4 ms for the same kernel into reused memory; most of its time") \
        in finding["summary"]
    row = {"shape": [4096, 4096], "dtype": "float32"}  # 64 MiB: 16384 small pages, 32 huge ones
    assert [verdicts.fresh_memory({**row, "page_faults": n}) for n in (2, 32, 16385)] == [False, True, True]
    assert verdicts.fresh_memory(row) is None
    on_gpu_too = with_page_faults(runtime_results(1.0, 1.2, torch_allocating_ms=4.0), 20.0)
    gpu_rows = [{**r, "median_ms": r["median_ms"] / 100} for r in runtime_results(1.0, 1.2)["runtime"]["runs"][0]["rows"]]
    on_gpu_too["runtime"]["runs"].append({"device": "cuda", "rows": gpu_rows})
    assert "20 ms forward, against 4 ms for the same kernel" in verdicts.allocation(on_gpu_too)["summary"]  # not the GPU's
    close = verdicts.allocation(with_page_faults(runtime_results(1.0, 1.2, torch_allocating_ms=4.0), 6.0))
    assert "6 ms forward, against 4 ms" in close["summary"] and "most of its time" not in close["summary"]
    run = with_page_faults(runtime_results(1.0, 1.2, torch_allocating_ms=4.0), 20.0)["runtime"]["runs"][0]
    table = "\n".join(render.allocation_table(run))
    assert "| twinop-jax-jit | float32 | fwd | 20 | 16385 | no out=; fresh memory every call |  |  |" in table
    assert "| twinop-tf-function | float32 | fwd | 4.8 | 2 | no out=; its allocator keeps its memory |  |  |" in table
    assert "| twinop-torch | float32 | fwd | 16 | 16385 | 4 | 75% |  |" in table


def test_an_out_call_measured_slower_than_the_allocating_one_shows_no_allocation_share():
    results = runtime_results(1.0, 1.2, torch_allocating_ms=0.95)  # out= 5% slower: noise
    table = "\n".join(render.allocation_table(results["runtime"]["runs"][0]))
    assert "| twinop-torch | float32 | fwd | 3.8 |  | 4 | 0% |  |" in table
    assert "(0% / 0% of the call is allocation)" in verdicts.allocation(results)["summary"]


def test_support_says_tensorflow_gpu_kernels_were_not_run_where_a_gpu_was_seen_without_tensorflow():
    cell = {"api": "torch eager", "dtype": "float32", "status": "supported"}
    tf_missing = {"framework": "tensorflow", "import_error": "ModuleNotFoundError: No module named 'tensorflow'",
                  "cells": []}

    def cells(device):
        return [{**cell, "device": device, "dtype": dtype} for dtype in support.EXPECTED + support.PROBES]

    def text(device, tensorflow):
        return render.support({"frameworks": {"torch": {"framework": "torch", "cells": cells(device)},
                                              "tensorflow": tensorflow}})

    assert render.TF_GPU_NOT_RUN in text("cuda", tf_missing)
    assert render.TF_GPU_NOT_RUN not in text("cpu", tf_missing)
    assert render.TF_GPU_NOT_RUN not in text("cuda", {"framework": "tensorflow", "cells": cells("cuda")})


def test_host_bound_gpu_times_are_marked_as_the_hosts():
    row = {"impl": "twinop-torch", "dtype": "float32", "pass": "fwd+bwd", "GBps": 1.0, "copy_fraction": 0.1}
    run = {"device": "cuda", "machine": "a GPU", "overhead": [], "skipped": [],
           "copy": [{"framework": "torch", "dtype": "float32", "shape": [8, 64], "median_ms": 0.002, "GBps": 1.0}],
           "rows": [{**row, "shape": [8, 64], "median_ms": 0.25, "host_bound": True},
                    {**row, "pass": "fwd", "shape": [8, 64], "median_ms": 0.003}]}
    text = render.runtime_run(run, plots=[])
    assert "| twinop-torch | fwd+bwd | 0.25\\* |" in text and "| twinop-torch | fwd | 0.003 |" in text
    assert render.HOST_BOUND_NOTE in text
    del run["rows"][0]["host_bound"]
    assert render.HOST_BOUND_NOTE not in render.runtime_run(run, plots=[])


@pytest.mark.parametrize("op", runtime.OPS)
def test_the_rounds_time_every_impl_the_speed_verdict_judges(op):
    timed = {impl for impls in runtime.HEAD_TO_HEAD[op].values() for impl in impls}
    judged = {impl for _, tf, torch in verdicts.SPEED_GROUPS.values()
              for impl in verdicts._for_op(tf, op) + verdicts._for_op(torch, op)} - set(runtime.ABSENT[op])
    assert judged <= timed <= set(runtime.IMPLS) - set(runtime.ABSENT[op])


def test_report_options_are_checked():
    with pytest.raises(SystemExit, match="--build takes none or a comma list of numpy, torch"):
        cli.main(["report", "--build", "cuda"])


def test_report_help_names_the_bindings_built_by_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    assert f"(default: {','.join(ALL_BUILDS)})" in "".join(capsys.readouterr().out.split()).replace(":", ": ")


def test_report_end_to_end(tiny_report):
    """The whole report at its smallest (the session's one tiny run): runtime 'tiny', and only the
    numpy binding built; both ops on every axis that has them."""
    results, tmp_path, _ = tiny_report
    assert {"REPORT.md", "results.json", "boilerplate_bias_act.png", "boilerplate_rms_norm.png",
            "build.png"} <= set(os.listdir(tmp_path))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {"boilerplate", "support", "build", "runtime", "distributed", "verdicts", "meta"} <= set(saved)
    assert not [f for f, result in saved["distributed"].items() if "worker_error" in result]
    assert saved["boilerplate"]["available"] and saved["build"]["bindings"]["numpy"]["ok"]
    loop = saved["build"]["edit_loop"]["bindings"]["numpy"]
    for trigger in ("math header", "own file"):
        assert loop[trigger]["error"] is None and loop[trigger]["rebuild_cpu_s"] > 0.5 and loop[trigger]["reload_wall_s"] > 0
    for framework in ("numpy", "torch", "tensorflow"):
        if framework != "numpy" and importlib.util.find_spec(framework) is None:
            continue
        for op, dtypes in support.DTYPES.items():
            cells = {(c["api"], c["dtype"]): c["status"] for c in saved["support"]["frameworks"][framework]["cells"]
                     if c["device"] == "cpu" and c["op"] == op}
            for api in {api for api, _ in cells}:
                assert [cells[api, d] for d in dtypes] == ["supported"] * len(dtypes), (op, api)
                assert cells[api, "int32"] == "unsupported", (op, api)
    assert saved["runtime"]["available"] and [run["op"] for run in saved["runtime"]["runs"]] == list(runtime.OPS)
    assert all(run["rows"] for run in saved["runtime"]["runs"])
    assert {f"runtime_cpu_{op}_float32.png" for op in runtime.OPS} <= set(os.listdir(tmp_path))
    assert [v["claim"] for v in results["verdicts"]] == [v["claim"] for v in saved["verdicts"]]
    registry = saved["support"]["registry"]
    assert registry["cuda"].startswith("not built with CUDA")  # tiny mode: read from the installed twinop
    if all(importlib.util.find_spec(f) for f in ("torch", "tensorflow")):
        assert all(registry["frameworks"][f]["ops"] for f in ("torch", "tensorflow"))
        judged = {v["claim"]: v["verdict"] for v in saved["verdicts"]}  # all but the build axis's (numpy alone built)
        assert "not settled" not in [judged[verdicts.boilerplate({})["claim"]], judged[verdicts.support({})["claim"]],
                                     judged[verdicts.speed({})["claim"]]]
        for verdict in saved["verdicts"][:2] + saved["verdicts"][3:4]:  # each judged on both ops
            assert set(verdict["numbers"]["verdict_per_op"]) == set(verdicts.JUDGED_OPS), verdict["claim"]
            assert "not settled" not in verdict["numbers"]["verdict_per_op"].values(), verdict["claim"]
            assert all(f"**{op}** (" in verdict["summary"] for op in verdicts.JUDGED_OPS), verdict["claim"]
    report = (tmp_path / "REPORT.md").read_text()
    assert report.index("## Verdicts") < report.index("## Boilerplate") < report.index("## Runtime")
    assert "| **total, every feature** |" in report and "*Criterion:*" in report
    assert "### rms_norm, cpu:" in report and "**What one more op costs.**" in report
    assert "| keras-rmsnorm | fwd |" in report and "bfloat16 x, float32 weight" in report


def test_jax_lines_sit_beside_the_verdicts():
    """The claims stay about PyTorch vs TensorFlow; JAX gets one line each, from the same numbers."""
    results = feature_results({"registration": 10, "wrapper": 100, "shapes": 20}, {"registration": 50, "wrapper": 110,
                                                                                 "shapes": 70})
    jax = {f: {"status": boilerplate.NOT_POSSIBLE, "why": "reason"} for f in boilerplate.FEATURES}
    results["boilerplate"]["ops"]["bias_act"]["jax"] = {**jax, "wrapper": {"lines": 120}, "second-order": {"lines": 30}}
    rows = [{"impl": impl, "dtype": "float32", "shape": [1024, 1024], "pass": pass_, "median_ms": ms}
            for impl, ms in (("twinop-jax-jit", 1.0), ("jax-jit", 2.0)) for pass_ in ("fwd", "fwd+bwd")]
    results["runtime"] = {"available": True, "runs": [{"device": "cpu", "rows": rows}]}
    results.update(build_results())
    seconds = {"configure_cpu_s": 1.0, "build_cpu_s": 2.0}
    for framework in ("torch", "tensorflow"):
        results["build"]["bindings"][framework].update(seconds)
    results["build"]["bindings"]["jax"] = {"ok": True, "tools": {}, **seconds, "settings": [
        {"kind": "system include", "value": "/env/lib/site-packages/jaxlib/include", "where": "CMakeLists.txt:2"}]}
    items = verdicts.all_verdicts(results)
    # JAX changes no verdict; the allocation finding lists every binding, JAX's too.
    assert [v["verdict"] for v in items] == ["holds", "holds", "not settled", "measured"]
    assert items[3]["summary"].endswith("bias_act cpu twinop-jax-jit 1 / 1 as called (no out=)")
    assert items[0]["jax"].startswith("bias_act: 150 lines over every feature; on the 2 it shares with PyTorch 150 "
                                      "vs PyTorch's 100")
    assert items[1]["jax"] == ("3 s of CPU to configure and build the binding (vs torch 3 s, tensorflow 3 s), 1 settings beyond the "
                               "core: jaxlib's FFI headers, nothing of jaxlib linked")
    assert items[2]["jax"].endswith("bias_act cpu float32 fwd 0.50x, bias_act cpu float32 fwd+bwd 0.50x")
    text = render.verdicts(items)
    assert "*JAX, the third framework:* bias_act: 150 lines over every feature" in text
    assert text.index("### “TensorFlow needs more boilerplate than PyTorch”: holds") < text.index(
        "### “what allocating its outputs adds to a call”: measured")
    assert "jax" not in verdicts.all_verdicts(feature_results({"wrapper": 1}, {"wrapper": 1}))[0]  # no JAX binding


@pytest.mark.parametrize("per_op,expected", [
    (("holds", "holds"), "holds"), (("holds", "does not hold"), "partly"), (("partly", "holds"), "partly"),
    (("does not hold", "does not hold"), "does not hold"), (("holds", "not settled"), "holds"),
    (("not settled", "not settled"), "not settled")])
def test_a_claim_holds_only_where_it_holds_on_both_ops(per_op, expected):
    judged = {op: (v, f"{op} numbers", {"n": i}) for i, (op, v) in enumerate(zip(verdicts.JUDGED_OPS, per_op))}
    verdict, summary, numbers = verdicts.on_every_op(judged)
    assert verdict == expected
    assert numbers == {"verdict_per_op": dict(zip(verdicts.JUDGED_OPS, per_op)),
                       "ops": {op: {"n": i} for i, op in enumerate(verdicts.JUDGED_OPS)}}
    for op, v in zip(verdicts.JUDGED_OPS, per_op):  # each number says which op it comes from
        expected_text = f"not settled on {op}: {op} numbers" if v == "not settled" else f"**{op}** ({v}): {op} numbers"
        assert expected_text in summary


def with_rms_norm_tables(results, torch, tf):
    """results with an rms_norm feature table beside bias_act's (the same shape, other lines)."""
    rms_norm = feature_results(torch, tf)["boilerplate"]["ops"]["bias_act"]
    results["boilerplate"]["ops"]["rms_norm"] = rms_norm
    return results


def test_boilerplate_verdict_judges_each_op():
    more_tf = ({"registration": 10, "wrapper": 100, "shapes": 20}, {"registration": 50, "wrapper": 110, "shapes": 70})
    results = with_rms_norm_tables(feature_results(*more_tf), *reversed(more_tf))  # rms_norm: PyTorch's longer
    verdict = verdicts.boilerplate(results)
    assert verdict["verdict"] == "partly"
    assert verdict["numbers"]["verdict_per_op"] == {"bias_act": "holds", "rms_norm": "does not hold"}
    assert "**bias_act** (holds): on the" in verdict["summary"]
    assert "**rms_norm** (does not hold): on the" in verdict["summary"]
    assert verdicts.boilerplate(with_rms_norm_tables(feature_results(*more_tf), *more_tf))["verdict"] == "holds"


def test_one_more_op_counts_each_ops_own_files_beside_the_shared_ones():
    def file(op, *parts):
        return {"op": op, "parts": [{"feature": "wrapper", "bindings": list(b), "lines": n} for b, n in parts]}

    data = {"ops": {"bias_act": {}, "rms_norm": {}}, "files": [
        file("bias_act", (("torch", "torch-stable"), 30)), file("bias_act", (("tensorflow",), 20)),
        file("rms_norm", (("torch",), 12), (("torch-stable",), 5)), file(None, (("torch", "tensorflow"), 7)),
        file("rms_norm", (("core",), 40))]}
    added = verdicts.one_more_op(data)
    columns = ("numpy", "torch", "torch-stable", "tensorflow", "jax", "core")
    assert added["own"]["bias_act"] == dict(zip(columns, (0, 30, 30, 20, 0, 0)))
    assert added["own"]["rms_norm"] == dict(zip(columns, (0, 12, 5, 0, 0, 40)))
    assert added["shared"]["torch"] == 7 and added["shared"]["tensorflow"] == 7 and added["shared"]["jax"] == 0
    table = "\n".join(render.one_more_op(data))
    assert "| torch (stable ABI) | 30 | 5 | 0 |" in table and "| core | 0 | 40 | 0 |" in table
    assert verdicts.one_more_op({"ops": {"bias_act": {}}, "files": data["files"]}) is None  # one op: nothing added


def test_every_binding_has_rms_norm_files_and_a_column_in_its_table():
    data = boilerplate.measure(ROOT)
    assert not data["missing"] and not data["unlisted"]
    assert set(data["ops"]["rms_norm"]) == set(boilerplate.BINDINGS)
    added = verdicts.one_more_op(data)
    assert all(added["own"][op][name] > 0 for op in verdicts.JUDGED_OPS for name in (*boilerplate.BINDINGS, "core"))
    assert "what one more op costs, the lines of its own files (bias_act, then rms_norm" in verdicts.boilerplate(
        {"boilerplate": data})["summary"]


def with_rms_norm_support(results, tf_mixed="supported"):
    """results whose probes and registries also cover rms_norm: the same as bias_act's, its mixed
    dtypes (half x, float32 weight) `tf_mixed` in TensorFlow and supported in PyTorch."""
    frameworks = results["support"]["frameworks"]
    for framework, result in frameworks.items():
        rms = [{**c, "op": "rms_norm"} for c in result["cells"]]
        for device in ("cpu", "cuda"):
            status = next(c["status"] for c in rms if c["device"] == device and c["dtype"] == "float32")
            mixed = tf_mixed if framework == "tensorflow" and status == "supported" else status
            rms += [{"op": "rms_norm", "api": rms[0]["api"], "device": device, "dtype": dtype, "status": mixed}
                    for dtype in support.MIXED]
        result["cells"] += rms
        result["backends"] += [{**b, "op": "rms_norm", "error": b["error"].replace("BiasAct", "RmsNorm")
                                .replace("bias_act", "rms_norm")} for b in result["backends"]]
    for framework, name in (("torch", "twinop::rms_norm"), ("tensorflow", "Twinop>RmsNorm")):
        ops = results["support"]["registry"]["frameworks"][framework]["ops"]
        ops[name] = next(iter(ops.values()))
    return results


def test_support_verdict_judges_each_op_with_its_mixed_dtypes():
    clear_xla = XLA_ERROR + " Registered: device='CPU'"
    both = verdicts.support(with_rms_norm_support(support_results({"cpu"}, tf_backend_error=clear_xla)))
    assert both["verdict"] == "holds"
    assert both["numbers"]["verdict_per_op"] == {"bias_act": "holds", "rms_norm": "holds"}
    assert both["numbers"]["ops"]["rms_norm"]["parts"]["(d) runs"] == {"torch": 6, "tensorflow": 6}
    assert "(d) dtypes that run and match on cpu 6 vs 6/6" in both["summary"]
    mixed_fails = with_rms_norm_support(support_results({"cpu"}, tf_backend_error=clear_xla), tf_mixed="unsupported")
    verdict = verdicts.support(mixed_fails)
    assert verdict["verdict"] == "partly"  # rms_norm: TensorFlow ahead on (a), (b), behind on (d)
    assert verdict["numbers"]["ops"]["rms_norm"]["behind"] == ["(d) runs"]


def with_rms_norm_run(results, tf_ms, own=(None, None)):
    """results with an rms_norm run beside bias_act's: PyTorch's op as called 1 ms (it has no out=),
    TensorFlow's per op in a chain tf_ms; the compositions' fastest forms own (keras-rmsnorm for TF)."""
    tf_own, torch_own = own[0] or tf_ms, own[1] or 1.0
    times = (("twinop-torch", 1.0), ("twinop-tf-function", tf_ms), ("twinop-tf-chain", tf_ms),
             ("twinop-tf-eager", tf_ms), ("keras-rmsnorm", tf_own), ("tf-xla", 2 * tf_own), ("tf-function", 3 * tf_own),
             ("torch-eager", torch_own), ("torch-compile", 2 * torch_own))
    rows = [{"op": "rms_norm", "impl": impl, "dtype": "float32", "shape": [4096, 4096], "pass": pass_,
             "median_ms": ms} for impl, ms in times for pass_ in ("fwd", "fwd+bwd")]
    results["runtime"]["runs"].append({"device": "cpu", "op": "rms_norm", "rows": rows})
    return results


@pytest.mark.parametrize("tf_ms,own,expected", [(1.1, (None, None), "holds"), (2.0, (None, None), "partly"),
                                                (2.0, (2.0, None), "partly")])
def test_speed_verdict_judges_each_op(tf_ms, own, expected):
    verdict = verdicts.speed(with_rms_norm_run(runtime_results(1.0, 1.2), tf_ms, own))
    assert verdict["verdict"] == expected
    per_op = verdict["numbers"]["verdict_per_op"]
    assert per_op["bias_act"] == "holds" and per_op["rms_norm"] == {1.1: "holds"}.get(tf_ms, per_op["rms_norm"])
    rms = verdict["numbers"]["ops"]["rms_norm"]
    kernel, composed = rms["kernel_pairs"][0], rms["own_pairs"][0]
    assert (kernel["op"], kernel["tf_impl"], kernel["torch_impl"]) == ("rms_norm", "twinop-tf-chain", "twinop-torch")
    assert composed["tf_impl"] == "keras-rmsnorm" and composed["tf_over_torch"] == (own[0] or tf_ms)
    rms_norm_part = verdict["summary"][verdict["summary"].index("**rms_norm** ("):]  # its numbers after its name
    assert f"cpu float32 fwd {tf_ms:.2f}x" in rms_norm_part and "cpu float32 fwd 1.20x" not in rms_norm_part
    if expected == "partly" and own[0]:
        assert per_op["rms_norm"] == "does not hold"  # both comparisons outside on rms_norm, within on bias_act


def test_an_op_whose_out_covers_the_forward_alone_shows_no_share_for_its_backward():
    rows = [{"op": "rms_norm", "impl": impl, "dtype": "float32", "shape": [4096, 4096], "pass": pass_, "median_ms": ms}
            for impl, pass_, ms in (("twinop-numpy", "fwd", 4.0), ("twinop-numpy", "fwd+bwd", 9.0),
                                    ("twinop-numpy-out", "fwd", 3.0))]
    run = {"device": "cpu", "op": "rms_norm", "rows": rows}
    finding = verdicts.allocation({"runtime": {"runs": [run]}})
    assert "rms_norm cpu twinop-numpy 4 / 9 as called, 3 / - into preallocated outputs (25% / - of the call" in finding[
        "summary"]
    table = "\n".join(render.allocation_table(run))
    assert "| twinop-numpy | float32 | fwd+bwd | 9 |  | no out= for this pass |" in table


def test_report_command_prints_each_ops_feature_table_and_the_verdicts(tmp_path, monkeypatch, capsys):
    import twinop.report

    results = with_rms_norm_tables(feature_results({"wrapper": 100}, {"wrapper": 120}), {"wrapper": 90}, {"wrapper": 80})
    results["verdicts"] = verdicts.all_verdicts(results)
    monkeypatch.setattr(twinop.report, "run_report", lambda *args: results)
    assert cli.main(["report", "--out", str(tmp_path), "--build", "none"]) == 0
    out = capsys.readouterr().out
    assert "Boilerplate of bias_act, lines per feature:" in out and "Boilerplate of rms_norm, lines per feature:" in out
    assert "TensorFlow needs more boilerplate than PyTorch: partly (**bias_act** (holds)" in out
