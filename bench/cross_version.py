"""The stable-ABI PyTorch library built once, then installed and tested under each torch release:
builds twinop's wheel once against the torch installed here (`pip wheel`), then for each torch
version makes a venv, installs that torch and the test dependencies, installs the one wheel there
without rebuilding (`--no-deps`), and records

    installed as      torch.__version__ in the venv
    loads by default  twinop.torch.ABI with TWINOP_TORCH_ABI unset (stable, where the classic library is refused)
    classic library   TWINOP_TORCH_ABI=classic: its version guard's ImportError, or "loads"
    tests             TESTS run with TWINOP_TORCH_ABI=stable: passed, failed, xfailed, skipped, errors
    seconds, size     the install's and the tests' wall seconds; the venv's size on disk

The versions: those given, else every release of torch from the stable library's target version
on that `pip index versions torch` lists (no pre-releases, no local builds such as +cpu). A
version pip cannot install here (no wheel for this Python, a constraint) gets a row saying
pip's reason, and the run goes on. Each venv is removed after its row (--keep keeps them, and the
work folder). Results, rewritten after each row: OUT/cross_version.json and OUT/cross_version.md
(OUT: --out, else bench/results/cross-version-cpu-<N>cores-<date>). Exit status 1 if a version
installed but did not load the stable library or failed a test, or if no version was tested.

    python bench/cross_version.py [--wheel WHEEL] [--keep] [--work DIR] [--out DIR] [VERSION ...]

Each CUDA build of torch from PyPI is several GB installed; PIP_CACHE_DIR (or PIP_NO_CACHE_DIR=1)
decides where its download is kept. CROSS_VERSION_PYTHON names the Python that builds the wheel
and makes the venvs (default: this one, whose torch the wheel is built against).
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.environ.get("CROSS_VERSION_PYTHON", sys.executable)
TESTS = ["tests/test_torch.py", "tests/test_torch_autodiff.py", "tests/test_torch_integration.py",
         "tests/test_rms_norm_torch.py"]
TEST_DEPENDENCIES = ("numpy", "pytest")  # pinned as in requirements.txt
STEP_TIMEOUT_S = 3600  # an install that downloads several GB on a slow link, or a test run on a loaded machine
COUNTS = ("passed", "failed", "xfailed", "skipped", "errors")
# Imports twinop's torch op under the TWINOP_TORCH_ABI it is given; prints what loaded or why not.
PROBE = """
import json, torch
try:
    import twinop.torch as tt
    print(json.dumps({"torch": torch.__version__, "abi": tt.ABI}))
except ImportError as error:
    print(json.dumps({"torch": torch.__version__, "error": str(error)}))
"""


def run(command, **kwargs):
    """subprocess.run, text captured, in the environment of a fresh shell: no venv or twinop choice
    of the caller's leaks into the venv's Python."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TWINOP_TORCH_ABI")}
    env.update(kwargs.pop("env", {}))
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=STEP_TIMEOUT_S, **kwargs)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "", f"ERROR: timed out after {STEP_TIMEOUT_S} s")


def release(version):
    """(major, minor, patch...) of a plain release such as '2.14.1'; None for '2.13.0+cpu', '2.10.0rc1'."""
    return tuple(int(part) for part in version.split(".")) if re.fullmatch(r"\d+(\.\d+)+", version) else None


def available_versions(target):
    """Every plain release of torch pip lists, from the target (major, minor) on, oldest first."""
    result = run([PYTHON, "-m", "pip", "index", "versions", "torch"])
    listed = re.search(r"^Available versions: (.*)$", result.stdout, re.M)
    if result.returncode or not listed:
        sys.exit(f"pip index versions torch failed: {pip_error(result)}")
    releases = [v for v in listed.group(1).split(", ") if release(v) and release(v)[:2] >= target]
    return sorted(releases, key=release)


def pip_error(result):
    """pip's reason in one line: its first ERROR line (without the list of versions it found) and
    any constraint it names (pip prints those only without -q)."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [re.sub(r" \(from versions: .*\)", "", line) for line in lines if line.startswith("ERROR:")]
    constraints = [line for line in lines if "(constraint)" in line]
    return " ".join(errors[:1] + constraints) or (lines[-1] if lines else f"exit {result.returncode}")


def build_wheel(work):
    """The one wheel, built against this Python's torch."""
    folder = os.path.join(work, "wheel")
    result = run([PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", folder, ROOT])
    wheels = glob.glob(os.path.join(folder, "twinop-*.whl"))
    if result.returncode or len(wheels) != 1:
        sys.exit(f"pip wheel failed: {pip_error(result)}")
    return wheels[0]


def build_info(wheel):
    """The wheel's twinop/_build_info.py, as a dict."""
    with zipfile.ZipFile(wheel) as archive:
        info = {}
        exec(archive.read("twinop/_build_info.py").decode(), info)
    return {k: v for k, v in info.items() if k.isupper()}


def pins(names):
    """name==version for each name, as requirements.txt pins it."""
    with open(os.path.join(ROOT, "requirements.txt")) as file:
        pinned = dict(line.split("#")[0].strip().split("==") for line in file if "==" in line.split("#")[0])
    return [f"{name}=={pinned[name]}" for name in names]


def probe(python, abi):
    """What `import twinop.torch` loads in the venv with TWINOP_TORCH_ABI=abi ('' for unset)."""
    result = run([python, "-c", PROBE], env={"TWINOP_TORCH_ABI": abi} if abi else {})
    if result.returncode:
        return {"error": (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def pytest_counts(output):
    """{passed, failed, ...} from pytest's summary line."""
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    found = {("errors" if word.startswith("error") else word): int(n)
             for n, word in re.findall(r"(\d+) (passed|failed|xfailed|skipped|errors?)\b", summary)}
    return {name: found.get(name, 0) for name in COUNTS}


def size_mb(folder):
    total = 0
    for parent, _, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(parent, name)).st_size for name in files)
    return round(total / 2**20)


def one_version(version, wheel, work, keep):
    """The row for one torch version."""
    venv = os.path.join(work, f"torch-{version}")
    python = os.path.join(venv, "bin", "python")
    row = {"torch": version}
    try:
        started = time.monotonic()
        steps = [[PYTHON, "-m", "venv", venv],
                 [python, "-m", "pip", "install", f"torch=={version}", *pins(TEST_DEPENDENCIES)],
                 [python, "-m", "pip", "install", "-q", "--no-deps", wheel]]
        for command in steps:
            result = run(command)
            if result.returncode:
                return {**row, "status": "not installed", "reason": pip_error(result)}
        row["install_s"] = round(time.monotonic() - started)
        row["size_mb"] = size_mb(venv)
        default, classic, stable = (probe(python, abi) for abi in ("", "classic", "stable"))
        row["installed"] = default.get("torch") or stable.get("torch")
        row["default"] = default.get("abi") or f"none: {default['error']}"
        row["classic"] = "loads" if classic.get("abi") == "classic" else classic["error"]
        started = time.monotonic()
        result = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=ROOT,
                     env={"TWINOP_TORCH_ABI": "stable"})
        row["tests_s"] = round(time.monotonic() - started)
        row["tests"] = pytest_counts(result.stdout)
        proven = (stable.get("abi") == "stable" and result.returncode == 0 and row["tests"]["passed"] > 0
                  and not row["tests"]["failed"] and not row["tests"]["errors"])
        row["status"] = "passed" if proven else "failed"
        if stable.get("abi") != "stable":
            row["reason"] = f"the stable library did not load: {stable.get('error')}"
        elif not proven:
            row["reason"] = (result.stdout.strip().splitlines() or [f"pytest exit {result.returncode}"])[-1]
        return row
    finally:
        if not keep:
            shutil.rmtree(venv, ignore_errors=True)


def machine():
    model = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as file:
            model = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), model)
    return (f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}")


def commit():
    """The checkout's commit, '-dirty' where the wheel was built from uncommitted changes."""
    result = run(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _tests_cell(row):
    counts = row["tests"]
    return ", ".join(f"{counts[name]} {name}" for name in COUNTS if counts[name] or name in ("passed", "failed"))


def markdown(results):
    head = results["built"]
    lines = [f"# The stable-ABI torch library across torch releases ({results['date']})", "",
             f"`bench/cross_version.py` on {results['machine']}; twinop {results['commit']}, one wheel "
             f"(`{head['wheel']}`, sha256 `{head['sha256'][:16]}...`) built against torch {head['torch']}, "
             f"its stable library targeting torch >= {head['stable_target']}. Each version in a fresh venv: that "
             f"torch and {', '.join(results['test_dependencies'])} from pip, the wheel with `--no-deps`; the tests "
             f"({', '.join(f'`{t}`' for t in results['tests'])}) with `TWINOP_TORCH_ABI=stable`. "
             f"{results['note']}", "",
             "| torch | installed as | loads by default | classic library (its version guard) "
             "| tests on the stable library | install s | tests s | venv size |",
             "|---|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        if row["status"] == "not installed":
            lines.append(f"| {row['torch']} | not installed: {row['reason']} | | | | | | |")
            continue
        tests = _tests_cell(row) + ("" if row["status"] == "passed" else f" (**failed**: {row.get('reason', '')})")
        lines.append(f"| {row['torch']} | {row['installed']} | {row['default']} | {row['classic']} | {tests} "
                     f"| {row['install_s']} | {row['tests_s']} | {row['size_mb'] / 1024:.1f} GB |")
    return "\n".join(lines) + "\n"


def write(out, results):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "cross_version.json"), "w") as file:
        json.dump(results, file, indent=1)
    with open(os.path.join(out, "cross_version.md"), "w") as file:
        file.write(markdown(results))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*",
                        help="torch versions (default: every release pip lists from the target)")
    parser.add_argument("--wheel", help="a twinop wheel already built (default: pip wheel . here)")
    parser.add_argument("--work", help="folder for the wheel and the venvs (default: a new temporary one)")
    parser.add_argument("--out", help="results folder (default: bench/results/cross-version-cpu-<N>cores-<date>)")
    parser.add_argument("--keep", action="store_true", help="keep each venv and the work folder")
    parser.add_argument("--note", default="", help="a sentence for the results' heading (the machine's load, say)")
    args = parser.parse_args()
    date = datetime.date.today().isoformat()
    out = args.out or os.path.join(ROOT, "bench", "results", f"cross-version-cpu-{os.cpu_count()}cores-{date}")
    work = args.work or tempfile.mkdtemp(prefix="twinop-cross-version-")
    os.makedirs(work, exist_ok=True)
    try:
        wheel = os.path.abspath(args.wheel) if args.wheel else build_wheel(work)
        info = build_info(wheel)
        if not info.get("TORCH_STABLE_TARGET"):
            sys.exit(f"{wheel} has no stable-ABI torch library (TORCH_STABLE_TARGET is empty)")
        target = release(info["TORCH_STABLE_TARGET"] + ".0")[:2]
        versions = args.versions or available_versions(target)
        with open(wheel, "rb") as file:
            sha256 = hashlib.sha256(file.read()).hexdigest()
        results = {"date": date, "machine": machine(), "commit": commit(), "note": args.note, "tests": TESTS,
                   "test_dependencies": pins(TEST_DEPENDENCIES),
                   "built": {"wheel": os.path.basename(wheel), "sha256": sha256, "torch": info["TORCH_VERSION"],
                             "stable_target": info["TORCH_STABLE_TARGET"]},
                   "rows": []}
        for version in versions:
            print(f"torch {version} ...", flush=True)
            results["rows"].append(one_version(version, wheel, work, args.keep))
            print("   ", json.dumps(results["rows"][-1]), flush=True)
            write(out, results)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"results: {out}")
    tested = [row for row in results["rows"] if row["status"] != "not installed"]
    return 1 if not tested or any(row["status"] != "passed" for row in tested) else 0


if __name__ == "__main__":
    sys.exit(main())
