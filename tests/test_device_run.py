"""bench/device_run.sh's control flow, on any machine: stand-ins for Python, nvidia-smi and
compute-sanitizer record what the script runs and answer as a GPU machine would, so the order
of the steps, the budget check, the skips and the failures are checked without a GPU."""
import os
import shutil
import stat
import subprocess
import textwrap

import pytest
from cuda_toolkits import without_system_cuda

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "device_run.sh")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and timeout")


def executable(path, body):
    path.write_text("#!/usr/bin/env bash\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def machine(tmp_path):
    """A fake GPU machine: returns run(**env) -> (exit status, summary lines, Python calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    executable(bin_dir / "nvidia-smi", """
        if [ "$1" = -L ]; then echo "GPU 0: Stand-in GPU (UUID: GPU-0)"; exit 0; fi
        if [ -n "${SLOW_NVIDIA_SMI:-}" ]; then sleep 30; fi
        echo "Stand-in GPU, 1.0, 1 MiB"
    """)
    executable(bin_dir / "compute-sanitizer", """
        case "$2" in
          memcheck) echo "========= Error: Device not supported"; exit 1 ;;
          racecheck) exit 0 ;;
          *) echo "========= 1 error"; exit 3 ;;
        esac
    """)
    executable(bin_dir / "ncu", f"""
        echo "ncu $*" >>{calls}
        while [ "$1" != --force-overwrite ]; do shift; done
        shift
        echo "==PROF== Disconnected"
        exec "$@"
    """)
    # The build's pip calls record the toolkit CMake is told to use; its _build_info says it was used.
    python = executable(tmp_path / "python", f"""
        echo "$*${{TWINOP_CUDA_TOOLKIT:+ [TWINOP_CUDA_TOOLKIT=$TWINOP_CUDA_TOOLKIT]}}" >>{calls}
        case "$*" in
          *test_cuda.py*) exit "${{PYTEST_CUDA_EXIT:-0}}" ;;
          *requirements-cuda.txt*) exit "${{PIP_TOOLKIT_EXIT:-0}}" ;;
          *_build_info*) echo "CUDA toolkit: ${{TWINOP_CUDA_TOOLKIT,,}} 13.0.88" ;;
        esac
    """)
    system_toolkit = tmp_path / "system-toolkit"  # a stand-in nvcc, on PATH where the machine has a toolkit
    system_toolkit.mkdir()
    executable(system_toolkit / "nvcc", 'echo "Cuda compilation tools, release 13.0, V13.0.88"')
    out = tmp_path / "out"

    def run(with_system_toolkit=True, **env):
        path = [str(bin_dir)] + [str(system_toolkit)] * with_system_toolkit + [without_system_cuda()["PATH"]]
        result = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PATH": os.pathsep.join(path), "OUT": str(out),
                                     "DEVICE_RUN_PYTHON": python, **env})
        summary = (out / "summary.txt").read_text().splitlines() if (out / "summary.txt").exists() else []
        ran = calls.read_text().splitlines() if calls.exists() else []
        return result.returncode, summary, ran

    return run


def status_of(summary, step):
    for line in summary:
        fields = line.split()
        if fields and fields[0] == step:
            return fields[1], line
    raise AssertionError(f"{step} not in summary.txt:\n" + "\n".join(summary))


def test_every_step_in_order_with_skips_and_failures(machine):
    status, summary, ran = machine()
    assert status == 1  # initcheck failed
    assert status_of(summary, "memcheck")[0] == "skipped" and "device not supported" in status_of(summary, "memcheck")[1]
    assert status_of(summary, "racecheck")[0] == "passed"
    assert status_of(summary, "initcheck")[0] == "failed" and "exit 3" in status_of(summary, "initcheck")[1]
    for step in ("versions", "build", "bench-headline", "bench-rms", "pytest-cuda", "bench-sizes", "report"):
        assert status_of(summary, step)[0] == "passed", step
    # The headline benchmarks right after the build (bias_act's, then RMSNorm's), then the checks
    # (both ops' CUDA tests), then bias_act's other sizes and the report.
    order = [next(i for i, call in enumerate(ran) if marker in call)
             for marker in ("pip install", "--ops bias_act --shapes 16384x8192", "--ops rms_norm",
                            "tests/test_cuda.py tests/test_cuda_rms_norm.py", "--ops bias_act --shapes 1024x1024",
                            "report --device cuda")]
    assert order == sorted(order), ran
    for opt_in, script in (("profile", "profile_gpu.py"), ("bench-jax", "bench_gpu_jax.py")):  # only where named
        assert not any(line.split()[:1] == [opt_in] for line in summary)
        assert not any(script in call for call in ran)
    for optional, step in (("tests/test_jax_cuda.py", "pytest-jax-cuda"), ("bench/device_stable_abi.sh", "stable-abi")):
        if not os.path.exists(os.path.join(ROOT, optional)):
            assert status_of(summary, step)[0] == "skipped"


def test_the_jax_benchmark_runs_where_named(machine):
    status, summary, ran = machine(DEVICE_RUN_STEPS="bench-jax", DEVICE_RUN_BUDGET_S="50")
    assert status == 0 and [line.split()[0] for line in summary] == ["bench-jax"]
    assert len(ran) == 1 and ran[0].startswith("bench/bench_gpu_jax.py")


def test_limits_over_the_budget_stop_before_any_step(machine):
    status, summary, ran = machine(DEVICE_RUN_BUDGET_S="100")
    assert status == 2 and ran == []


def test_selected_steps_only(machine):
    status, summary, ran = machine(DEVICE_RUN_STEPS="report", DEVICE_RUN_BUDGET_S="110")
    assert status == 0 and len(ran) == 1 and "report --device cuda" in ran[0]
    assert [line.split()[0] for line in summary] == ["report"]


def test_the_profile_runs_where_named_with_ncu_around_the_kernels_driver(machine, tmp_path):
    status, summary, ran = machine(DEVICE_RUN_STEPS="profile", DEVICE_RUN_BUDGET_S="90")
    assert status == 0 and [line.split()[0] for line in summary] == ["profile"]
    assert ran[0].startswith("ncu --kernel-name regex:bias_act|sum_partial|triton") and "--section SpeedOfLight" in ran[0]
    assert ran[1].endswith("bench/profile_gpu.py")  # the driver, run by ncu
    assert "==PROF== Disconnected" in (tmp_path / "out" / "ncu_profile.txt").read_text()


def test_a_failed_test_run_fails_the_script_and_the_rest_goes_on(machine):
    status, summary, ran = machine(PYTEST_CUDA_EXIT="1", DEVICE_RUN_STEPS="checks bench-sizes")
    assert status == 1
    assert status_of(summary, "pytest-cuda")[0] == "failed" and status_of(summary, "bench-sizes")[0] == "passed"


def test_a_step_past_its_limit_is_stopped_and_the_next_one_runs(machine):
    status, summary, ran = machine(SLOW_NVIDIA_SMI="1", DEVICE_RUN_STEPS="versions report",
                                   DEVICE_RUN_LIMITS="versions:2")  # the stand-in's nvidia-smi sleeps 30 s
    assert status == 1
    assert status_of(summary, "versions")[0] == "failed" and "timed out" in status_of(summary, "versions")[1]
    assert status_of(summary, "report")[0] == "passed"


@pytest.mark.parametrize("with_system_toolkit,asked,toolkit",
                         [(True, "auto", "SYSTEM"), (False, "auto", "PIP"), (True, "pip", "PIP")])
def test_the_build_uses_the_systems_toolkit_else_installs_pips(machine, with_system_toolkit, asked, toolkit):
    status, summary, ran = machine(with_system_toolkit, DEVICE_RUN_TOOLKIT=asked,
                                   DEVICE_RUN_STEPS="versions build", DEVICE_RUN_BUDGET_S="85")
    assert status == 0, summary
    builds = [i for i, call in enumerate(ran) if "pip install --no-build-isolation" in call]
    assert len(builds) == 1 and ran[builds[0]].endswith(f"[TWINOP_CUDA_TOOLKIT={toolkit}]")
    installs = [i for i, call in enumerate(ran) if "pip install -q -r requirements-cuda.txt" in call]
    assert installs == ([builds[0] - 1] if toolkit == "PIP" else [])
    assert f"CUDA toolkit: {toolkit.lower()} 13.0.88" in summary
    assert ("nvcc: none (no system CUDA toolkit)" in summary) == (not with_system_toolkit)


def test_a_toolkit_pip_cannot_install_fails_the_build_before_it_runs(machine):
    status, summary, ran = machine(False, PIP_TOOLKIT_EXIT="1", DEVICE_RUN_STEPS="build")
    assert status == 1 and status_of(summary, "build")[0] == "failed"
    assert not any("--no-build-isolation" in call for call in ran)
