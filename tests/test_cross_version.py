"""bench/cross_version.py's control flow, without a download: a stand-in Python answers as pip, venv,
twinop's probe and pytest would, and records what it was asked, so the versions chosen, the one
wheel installed everywhere without its dependencies, the row of a version pip cannot install, the
failures and the cleanup are checked in a few seconds; and the report's portability row, which
cites the result."""
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from twinop import _build_info
from twinop.report import portability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "cross_version.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import cross_version  # noqa: E402  (its TESTS)

BUILT = "2.13.0"
REFUSAL = "twinop's torch op was built against torch 2.13.0, but torch {} is installed"

# Run as python (and copied into each venv as its python): records its arguments, answers as each tool would.
STAND_IN = textwrap.dedent(r'''
    import json, os, shutil, sys, zipfile
    args, here, built = sys.argv[1:], os.path.abspath(sys.argv[0]), os.environ["BUILT"]
    with open(os.environ["CALLS"], "a") as calls:
        calls.write(json.dumps([here] + args) + "\n")
    installed = os.path.join(os.path.dirname(os.path.dirname(here)), "torch_version")  # in its venv
    if args[:2] == ["-m", "venv"]:
        os.makedirs(os.path.join(args[2], "bin"))
        shutil.copy(here, os.path.join(args[2], "bin", "python"))
    elif args[:4] == ["-m", "pip", "index", "versions"]:
        print("torch (2.15.0)")
        print("Available versions: 2.15.0, 2.14.0, 2.13.0+cpu, 2.13.0, 2.11.0, 2.10.0, 2.10.0rc1, 2.9.1, 1.13.1")
    elif args[:3] == ["-m", "pip", "wheel"]:
        folder = args[args.index("-w") + 1]
        os.makedirs(folder)
        with zipfile.ZipFile(os.path.join(folder, "twinop-0.1.0-cp311-cp311-linux_x86_64.whl"), "w") as wheel:
            wheel.writestr("twinop/_build_info.py", f"TORCH_VERSION = {built!r}\nTORCH_STABLE_TARGET = '2.10'\n")
    elif args[:3] == ["-m", "pip", "install"] and "--no-deps" not in args:
        version = next(a for a in args if a.startswith("torch==")).split("==")[1]
        if version in os.environ.get("CONSTRAINED", "").split():
            print("ERROR: Cannot install torch==%s because these package versions have conflicting dependencies.\n\n"
                  "The conflict is caused by:\n    The user requested torch==%s\n"
                  "    The user requested (constraint) torch<=2.14.1\n\n"
                  "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io" % (version, version))
            sys.exit(1)
        if version in os.environ.get("UNINSTALLABLE", "").split():
            sys.exit(f"ERROR: Could not find a version that satisfies the requirement torch=={version} "
                     f"(from versions: 2.10.0, 2.11.0)\nERROR: No matching distribution found for torch=={version}")
        open(installed, "w").write(version)
    elif args[0] == "-c":  # the probe
        version, abi = open(installed).read(), os.environ.get("TWINOP_TORCH_ABI", "")
        if abi == "classic" and version != built:
            print(json.dumps({"torch": version, "error": os.environ["REFUSAL"].format(version)}))
        else:
            print(json.dumps({"torch": version, "abi": abi or ("classic" if version == built else "stable")}))
    elif args[:2] == ["-m", "pytest"]:
        if open(installed).read() in os.environ.get("FAILING", "").split():
            print("1 failed, 227 passed, 2 xfailed in 3.00s")
            sys.exit(1)
        print("228 passed, 2 xfailed, 32 warnings in 3.00s")
''')


@pytest.fixture
def bench(tmp_path):
    """run(*args, **env) -> (exit status, results, the stand-in's calls)."""
    python = tmp_path / "python"
    python.write_text(f"#!{sys.executable}\n" + STAND_IN)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    calls, work = tmp_path / "calls", tmp_path / "work"
    out = tmp_path / "source" / "bench" / "results" / "cross-version-here"  # where a checkout keeps it

    def run(*args, **env):
        result = subprocess.run([sys.executable, SCRIPT, "--out", str(out), "--work", str(work), *args],
                                capture_output=True, text=True,
                                env={**os.environ, "CROSS_VERSION_PYTHON": str(python), "CALLS": str(calls),
                                     "BUILT": BUILT, "REFUSAL": REFUSAL, **env})
        assert "Traceback" not in result.stderr, result.stderr
        written = out / "cross_version.json"
        results = json.loads(written.read_text()) if written.exists() else None
        return result.returncode, results, [json.loads(line) for line in calls.read_text().splitlines()]

    run.work, run.out, run.source = work, out, tmp_path / "source"
    return run


def test_every_release_from_the_target_with_one_wheel_installed_without_rebuilding(bench):
    status, results, calls = bench()
    assert status == 0
    # Plain releases from 2.10 on, oldest first: no 2.10.0rc1, no 2.13.0+cpu, nothing older than 2.10.
    assert [row["torch"] for row in results["rows"]] == ["2.10.0", "2.11.0", "2.13.0", "2.14.0", "2.15.0"]
    assert sum(call[1:4] == ["-m", "pip", "wheel"] for call in calls) == 1  # built once
    wheel_installs = [call for call in calls if "--no-deps" in call and call[1:4] == ["-m", "pip", "install"]]
    assert len(wheel_installs) == 5 and len({call[-1] for call in wheel_installs}) == 1  # the same wheel
    assert all(call[0].startswith(str(bench.work / "torch-")) for call in wheel_installs)  # each into its venv
    pinned = [call for call in calls if any(arg.startswith("torch==") for arg in call)]
    assert all({arg.split("==")[0] for arg in call if "==" in arg} == {"torch", "numpy", "pytest"} for call in pinned)
    tests = [call for call in calls if call[1:3] == ["-m", "pytest"]]
    assert all(call[-len(cross_version.TESTS):] == cross_version.TESTS for call in tests) and len(tests) == 5
    rows = {row["torch"]: row for row in results["rows"]}
    assert rows["2.11.0"]["default"] == "stable" and rows["2.11.0"]["classic"] == REFUSAL.format("2.11.0")
    assert rows["2.13.0"]["default"] == "classic" and rows["2.13.0"]["classic"] == "loads"
    assert rows["2.14.0"]["tests"] == {"passed": 228, "failed": 0, "xfailed": 2, "skipped": 0, "errors": 0}
    assert all(row["status"] == "passed" for row in rows.values())
    assert results["built"]["torch"] == BUILT and results["built"]["stable_target"] == "2.10"
    table = (bench.out / "cross_version.md").read_text()
    assert REFUSAL.format("2.14.0") in table and "| 2.13.0 | 2.13.0 | classic | loads |" in table
    assert os.listdir(bench.work) == ["wheel"]  # every venv removed after its row


def test_a_version_pip_cannot_install_is_a_row_and_the_run_goes_on(bench):
    status, results, calls = bench("2.9.0", "2.10.0", "2.15.0", UNINSTALLABLE="2.9.0", CONSTRAINED="2.15.0")
    assert status == 0  # the version installed passed
    rows = {row["torch"]: row for row in results["rows"]}
    assert rows["2.9.0"] == {"torch": "2.9.0", "status": "not installed",
                             "reason": "ERROR: Could not find a version that satisfies the requirement torch==2.9.0"}
    assert rows["2.10.0"]["status"] == "passed" and rows["2.15.0"]["status"] == "not installed"
    assert not any(call[1:4] == ["-m", "pip", "index"] for call in calls)  # the versions given, not pip's list
    assert ("| 2.15.0 | not installed: ERROR: Cannot install torch==2.15.0 because these package versions have "
            "conflicting dependencies. The user requested (constraint) torch<=2.14.1 |"
            in (bench.out / "cross_version.md").read_text())
    assert os.listdir(bench.work) == ["wheel"]  # the venv of a failed install removed too


def test_a_failed_test_fails_the_run_and_says_so(bench):
    status, results, _ = bench("2.10.0", "2.11.0", FAILING="2.10.0")
    assert status == 1
    first, second = results["rows"]
    assert first["status"] == "failed" and first["tests"]["failed"] == 1
    assert first["reason"] == "1 failed, 227 passed, 2 xfailed in 3.00s"
    assert second["status"] == "passed"  # went on after the failure
    assert "**failed**" in (bench.out / "cross_version.md").read_text()


def test_nothing_installed_is_not_a_success(bench):
    status, results, _ = bench("2.10.0", UNINSTALLABLE="2.10.0")
    assert status == 1 and results["rows"][0]["status"] == "not installed"


def test_keep_keeps_the_venvs(bench):
    status, _, _ = bench("2.10.0", "2.11.0", "--keep")
    assert status == 0 and sorted(os.listdir(bench.work)) == ["torch-2.10.0", "torch-2.11.0", "wheel"]


def test_the_report_cites_the_newest_result(bench):
    assert portability.releases_proven(None) == "" and portability.releases_proven(str(bench.source)) == ""
    bench("2.10.0", "2.12.0", "2.13.0", "2.14.0", UNINSTALLABLE="2.12.0", FAILING="2.14.0")
    older = bench.out.parent / "cross-version-older" / "cross_version.json"
    older.parent.mkdir()
    older.write_text(json.dumps({**json.loads((bench.out / "cross_version.json").read_text()), "date": "2000-01-01"}))
    cited = portability.releases_proven(str(bench.source))
    assert cited.startswith("on real releases (bench/results/cross-version-here/cross_version.md, 20")
    assert cited.endswith("one wheel built against torch 2.13.0 passed the torch tests on its stable library in "
                          "torch 2.10.0, 2.13.0, and its classic library was refused in 2.10.0; the tests failed in "
                          "torch 2.14.0")


@pytest.mark.skipif(not _build_info.TORCH_STABLE_TARGET, reason="the stable-ABI op was not built")
def test_the_stable_librarys_row_in_the_report_cites_it(bench, monkeypatch):
    bench("2.10.0")
    monkeypatch.setattr(portability, "stable_load", lambda: ("stable", True))  # its own test loads it
    measured = portability.measure(("torch-stable",), {}, str(bench.source))
    assert measured["torch-stable"]["how"].endswith(portability.releases_proven(str(bench.source)))
    assert "on real releases" in measured["torch-stable"]["how"]
