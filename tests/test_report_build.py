"""The build verdict on the CUDA kernels: which toolkit built them (the system's or pip's, and its
version), whether pip's sufficed where it was the only one, and a system toolkit, and the C
library's librt that the static CUDA runtime links, listed with the toolchain rather than judged
as outside the Python environment."""
import os
import re

from twinop.report import build_friction, verdicts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SYSTEM_ROOT = "/usr/local/cuda-13.0"
PIP_ROOT = "/env/lib/site-packages/nvidia/cu13"
LIBRT = "/usr/lib/x86_64-linux-gnu/librt.a"


def toolkit(source, root):
    return {"from": source, "version": "13.0.88", "root": root, "c_libraries": [LIBRT]}


def build_results(used, system_nvcc=None):
    """Two builds; where `used` names a toolkit, with CUDA: its runtime's headers, and its librt."""
    def binding(path):
        values = [("system include", path)]
        if used:
            values += [("system include", f"{used['root']}/include"), ("library", LIBRT)]
        settings = [{"kind": kind, "value": value, "where": "CMakeLists.txt:1"} for kind, value in values]
        return {"ok": True, "tools": {"C++ compiler": "/usr/bin/c++"}, "cuda_toolkit": used, "settings": settings}
    bindings = {"torch": binding("/env/lib/site-packages/torch/include"),
                "tensorflow": binding("/env/lib/site-packages/tensorflow/include")}
    cuda = {**build_friction.cuda_toolkit(bindings, bool(used)), "system_nvcc": system_nvcc}
    return {"build": {"available": True, "failures": {}, "bindings": bindings, "cuda_toolkit": cuda,
                      "environment": {"prefix": "/env", "base_prefix": "/python", "source_dir": "/src"}}}


def test_the_kernels_built_with_pips_toolkit_alone_show_it_sufficed():
    verdict = verdicts.pip_only(build_results(toolkit("pip", PIP_ROOT)))
    assert verdict["verdict"] == "holds"
    assert (f"the CUDA kernels were built with pip's CUDA toolkit 13.0.88 ({PIP_ROOT}), on a machine with no "
            "system CUDA toolkit: pip's sufficed") in verdict["summary"]


def test_pips_toolkit_chosen_beside_a_system_one_says_so():
    used = toolkit("pip", PIP_ROOT)
    summary = verdicts.pip_only(build_results(used, system_nvcc="/usr/local/bin/nvcc"))["summary"]
    assert "beside a system toolkit (/usr/local/bin/nvcc), not used: pip's sufficed" in summary


def test_a_system_toolkit_is_listed_with_the_toolchain_not_judged_outside():
    results = build_results(toolkit("system", SYSTEM_ROOT), "/usr/local/bin/nvcc")
    verdict = verdicts.pip_only(results)
    assert verdict["verdict"] == "holds", verdict["summary"]
    assert (f"built with the system's CUDA toolkit 13.0.88 ({SYSTEM_ROOT}), listed with the toolchain, so pip's was "
            "not tried") in verdict["summary"]
    # Not listed apart, the system toolkit's headers and librt lie outside the environment.
    results["build"]["cuda_toolkit"]["toolchain_paths"] = []
    outside = verdicts.pip_only(results)
    assert outside["verdict"] == "does not hold"
    assert outside["numbers"]["outside_environment"] == [LIBRT, f"{SYSTEM_ROOT}/include"]


def test_a_cpu_run_says_the_kernels_were_not_built():
    verdict = verdicts.pip_only(build_results(None))
    assert verdict["verdict"] == "holds" and "the CUDA kernels were not built in this run" in verdict["summary"]


def test_the_toolkit_is_read_from_what_the_configure_wrote(tmp_path):
    template = open(os.path.join(ROOT, "cmake", "_build_info.py.in")).read()
    (tmp_path / "CMakeCache.txt").write_text(f"//rt\nCUDAToolkit_rt_LIBRARY:FILEPATH={LIBRT}\n")
    for used, root, expected in (("pip 13.0.88", PIP_ROOT, toolkit("pip", PIP_ROOT)), ("", "", None)):
        info = template.replace("@TWINOP_CUDA_TOOLKIT_USED@", used).replace("@TWINOP_CUDA_TOOLKIT_ROOT@", root)
        (tmp_path / "_build_info.py").write_text(re.sub("@[A-Z_]+@", "", info))
        assert build_friction.read_cuda_toolkit(tmp_path) == expected
