"""Build friction, version portability: does each installed op library load under another version
of its framework? The classic libraries (torch's C++ API, TensorFlow's) are tied to the version
they were built against, and their version guards refuse any other; the stable-ABI torch library
is meant to load in every torch from its target version on. Evidence measured here: the guards'
errors (build_friction's mismatch probes), the framework C++ symbols each library imports (read
with nm: any of them can change between releases), and the stable library loading while the
classic one is refused. The load under really different torches is not measured here: it is
bench/device_stable_abi.sh's (on the GPU machine) and bench/cross_version.py's (torch releases
from pip, each in a venv), whose committed result the stable library's row cites."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

# binding -> (library file, C++ namespaces of its framework)
LIBRARIES = {
    "torch": ("_twinop_torch.so", ("c10", "at", "torch", "caffe2")),
    "torch-stable": ("_twinop_torch_stable.so", ("c10", "at", "torch", "caffe2")),
    "tensorflow": ("_twinop_tf.so", ("tensorflow", "tsl", "xla", "absl")),
}
C_SHIM = re.compile(r"(aoti_torch|torch)_\w+")  # torch's stable C functions

STABLE_LOAD = textwrap.dedent("""
    import numpy as np, twinop._build_info as info
    info.TORCH_VERSION = "0.0.1"  # as if torch were upgraded: the classic library's guard refuses it
    import torch, twinop.torch as tt
    from twinop import reference
    x, bias = np.linspace(-2, 2, 12).reshape(3, 4), np.linspace(-1, 1, 4)
    y = tt.bias_act(torch.from_numpy(x), torch.from_numpy(bias), "gelu").numpy()
    print(tt.ABI, bool(np.allclose(y, reference.bias_act(x, bias, "gelu"), rtol=1e-12, atol=1e-12)))
""")


def imported_symbols(path, namespaces):
    """(framework C++ symbols, C shim functions) among the library's undefined dynamic symbols."""
    listing = subprocess.run(["nm", "-D", "--undefined-only", "-C", path], capture_output=True, text=True, check=True)
    names = [line.split(None, 1)[-1].split("@")[0] for line in listing.stdout.splitlines() if line.strip()]
    framework = re.compile(r"\b(" + "|".join(namespaces) + r")::")
    return [n for n in names if framework.search(n)], [n for n in names if C_SHIM.fullmatch(n)]


def stable_load():
    """(loaded ABI, result right) of twinop.torch with the classic library refused, in a fresh process."""
    result = subprocess.run([sys.executable, "-c", STABLE_LOAD], capture_output=True, text=True)
    if result.returncode:
        return None, (result.stderr.strip().splitlines() or ["(no output)"])[-1]
    abi, right = result.stdout.split()
    return abi, right == "True"


def releases_proven(source_dir):
    """What bench/cross_version.py's newest result committed under source_dir shows, as a clause;
    '' if there is none (or no source tree)."""
    paths = glob.glob(os.path.join(source_dir, "bench", "results", "*", "cross_version.json")) if source_dir else []
    if not paths:
        return ""
    found = []
    for path in paths:
        with open(path) as file:
            found.append((json.load(file), os.path.relpath(path[:-len("json")] + "md", source_dir)))  # the table
    result, path = max(found, key=lambda pair: pair[0]["date"])
    passed = [row for row in result["rows"] if row["status"] == "passed"]
    refused = [row["torch"] for row in passed if row["classic"] != "loads"]
    failed = [row["torch"] for row in result["rows"] if row["status"] == "failed"]
    return (f"on real releases ({path}, {result['date']}), one wheel built against torch "
            f"{result['built']['torch']} passed the torch tests on its stable library in torch "
            f"{', '.join(row['torch'] for row in passed) or 'none'}, and its classic library was refused in "
            f"{', '.join(refused) or 'none'}"
            + (f"; the tests failed in torch {', '.join(failed)}" if failed else ""))


def measure(bindings, failures, source_dir=None):
    """{binding: {"library", "framework_cpp_symbols", "c_shim_functions", "loads", "how"}} for the
    built libraries among `bindings`; failures: build_friction's probes (the guards' errors);
    source_dir: the checkout whose committed cross-version result the stable library's row cites."""
    import twinop

    if not shutil.which("nm"):
        return {"available": False, "reason": "nm (binutils) is not installed"}
    results = {"available": True}
    for binding in (b for b in bindings if b in LIBRARIES):
        filename, namespaces = LIBRARIES[binding]
        path = os.path.join(os.path.dirname(twinop.__file__), filename)
        if not os.path.exists(path):
            continue
        cpp, shim = imported_symbols(path, namespaces)
        entry = {"library": filename, "framework_cpp_symbols": len(cpp), "c_shim_functions": len(shim)}
        framework = "tensorflow" if binding == "tensorflow" else "torch"
        if binding == "torch-stable":
            abi, right = stable_load()
            entry["loads"] = abi == "stable" and right is True
            entry["how"] = (f"loaded with the classic library refused by its version guard (twinop.torch.ABI = {abi}, "
                            f"result {'matches' if right is True else 'differs from'} the float64 reference)"
                            if abi else f"failed to load: {right}")
            proven = releases_proven(source_dir)
            entry["how"] += f"; {proven}" if proven else ""
        else:  # the version guard's answer: an ImportError, or the import going through
            entry["how"] = failures.get(framework, {}).get("mismatch", {}).get("message", "not probed")
            entry["loads"] = entry["how"] == "imported without error"
        results[binding] = entry
    return results
