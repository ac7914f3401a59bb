"""Axis 3, build friction: each binding configured and built from clean, alone, in a temporary
directory, timed; the settings each needed read back from CMake's file API (which also says
which CMakeLists.txt line set each one); and the errors a user gets when the framework is
missing, hidden by pip's build isolation, or of another version than the one built against."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

# binding -> (CMake target, switches that build it alone, the framework the build asks for its flags)
ALONE = {"TWINOP_TORCH": "OFF", "TWINOP_TORCH_STABLE": "OFF", "TWINOP_TF": "OFF",
         "TWINOP_JAX": "OFF"}  # no other framework asked at configure
BINDINGS = {
    "numpy": ("_twinop_numpy", ALONE, None),
    "torch": ("_twinop_torch", {**ALONE, "TWINOP_TORCH": "ON"}, "torch"),
    "torch-stable": ("_twinop_torch_stable", {**ALONE, "TWINOP_TORCH_STABLE": "ON"}, "torch"),
    "tensorflow": ("_twinop_tf", {**ALONE, "TWINOP_TF": "ON"}, "tensorflow"),
    "jax": ("_twinop_jax", {**ALONE, "TWINOP_JAX": "ON"}, "jax"),
}
CORE_TARGETS = ("twinop_core", "twinop_cuda")  # shared by every binding: built and timed apart
SWITCH = {"torch": "TWINOP_TORCH", "tensorflow": "TWINOP_TF", "jax": "TWINOP_JAX"}
BUILT_VERSION = {"torch": "TORCH_VERSION", "tensorflow": "TF_VERSION", "jax": "JAX_VERSION"}
PYTHON_MODULE = {"torch": "torch", "tensorflow": "tf", "jax": "jax"}


def _run(cmd, env=None):
    """(wall seconds, CPU seconds, CompletedProcess). CPU time is the child's and its descendants'
    (compiler, linker, framework import), so it holds when other work shares the machine."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        try:
            process = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        except FileNotFoundError as error:  # no cmake: the report says so instead of stopping
            return 0.0, 0.0, subprocess.CompletedProcess(cmd, 127, "", str(error))
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        result = subprocess.CompletedProcess(cmd, process.returncode, out.read(), err.read())
    return wall, usage.ru_utime + usage.ru_stime, result


def _tail(result, lines=3):
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def _tool(name):
    """A tool on PATH, else the copy pip installed next to this Python (the cmake and ninja packages)."""
    return shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable)) or name


def read_cache(build_dir):
    """CMake's cache: {KEY: value}."""
    cache = {}
    for line in open(os.path.join(build_dir, "CMakeCache.txt")):
        key, _, value = line.strip().partition("=")
        cache[key.split(":")[0]] = value  # KEY:TYPE=value
    return cache


def read_tools(build_dir):
    """The build tools CMake used, from its cache: {name: path}."""
    names = {"CMAKE_COMMAND": "cmake", "CMAKE_MAKE_PROGRAM": "ninja", "CMAKE_CXX_COMPILER": "C++ compiler",
             "CMAKE_CUDA_COMPILER": "CUDA compiler"}
    return {names[key]: value for key, value in read_cache(build_dir).items() if key in names and value}


def read_cuda_toolkit(build_dir):
    """Whose CUDA toolkit the configure chose, from the _build_info.py it wrote: {"from": "system" or
    "pip", "version", "root", "c_libraries"}, or None where CUDA is off. c_libraries: the C library's
    pieces the static CUDA runtime links (librt), found by CMake where the C toolchain keeps them."""
    with open(os.path.join(build_dir, "_build_info.py")) as fh:
        info = dict(re.findall(r'^(CUDA_TOOLKIT\w*) = "([^"]*)"', fh.read(), re.MULTILINE))
    if not info.get("CUDA_TOOLKIT"):
        return None
    source, version = info["CUDA_TOOLKIT"].split()
    rt = read_cache(build_dir).get("CUDAToolkit_rt_LIBRARY", "")
    return {"from": source, "version": version, "root": info["CUDA_TOOLKIT_ROOT"],
            "c_libraries": [rt] if os.path.isabs(rt) else []}


def system_cuda_compiler():
    """The nvcc CMake finds before pip's (CUDACXX, else nvcc on PATH or in $CUDA_PATH/bin), or None."""
    search = os.environ.get("PATH", "")
    if os.environ.get("CUDA_PATH"):
        search += os.pathsep + os.path.join(os.environ["CUDA_PATH"], "bin")
    return os.environ.get("CUDACXX") or shutil.which("nvcc", path=search)


def pip_cuda_compiler():
    """The version of nvcc pip installed in this environment (nvidia-cuda-nvcc), or None."""
    try:
        return metadata.version("nvidia-cuda-nvcc")
    except metadata.PackageNotFoundError:
        return None


def cuda_compiler_available():
    return bool(system_cuda_compiler() or pip_cuda_compiler())


def cuda_toolkit(bindings, with_cuda):
    """The CUDA toolkit the builds used, which ones this machine has, and the paths listed with the
    toolchain, as pip installs none of them: a system toolkit, and the C library's librt."""
    used = next((b["cuda_toolkit"] for b in bindings.values() if b.get("cuda_toolkit")), None)
    toolchain = []
    if used:
        toolchain = ([used["root"]] if used["from"] == "system" else []) + used["c_libraries"]
    return {"with_cuda": with_cuda, "used": used, "system_nvcc": system_cuda_compiler(),
            "pip_nvcc": pip_cuda_compiler(), "toolchain_paths": toolchain}


def describe_cuda_toolkit(cuda):
    """The build verdict's clause on the CUDA kernels' toolkit: whose, and whether pip's sufficed."""
    used = cuda.get("used")
    if not cuda.get("with_cuda"):
        return ("the CUDA kernels were not built in this run (they are where the report runs on a GPU and finds "
                "a CUDA compiler, the system's or pip's)")
    if not used:
        return "the CUDA kernels were asked for but not built"
    if used["from"] == "system":
        return (f"the CUDA kernels were built with the system's CUDA toolkit {used['version']} "
                f"({used['root']}), listed with the toolchain, so pip's was not tried (TWINOP_CUDA_TOOLKIT=PIP "
                "tries it)")
    beside = (f"beside a system toolkit ({cuda['system_nvcc']}), not used" if cuda.get("system_nvcc")
              else "on a machine with no system CUDA toolkit")
    return (f"the CUDA kernels were built with pip's CUDA toolkit {used['version']} ({used['root']}), "
            f"{beside}: pip's sufficed")


def configure_args(source_dir, build_dir, switches, with_cuda, python=sys.executable):
    # TWINOP_CUDA_TOOLKIT as `pip install` reads it: PIP builds with pip's toolkit beside a system one.
    defines = {**switches, "TWINOP_CUDA": "ON" if with_cuda else "OFF",
               "TWINOP_CUDA_TOOLKIT": os.environ.get("TWINOP_CUDA_TOOLKIT", "AUTO"), "Python_EXECUTABLE": python,
               "CMAKE_BUILD_TYPE": "Release", "CMAKE_MAKE_PROGRAM": _tool("ninja")}
    try:
        import pybind11

        defines["pybind11_DIR"] = pybind11.get_cmake_dir()
    except ImportError:
        pass  # find_package(pybind11) fails, and the report shows that error

    return [_tool("cmake"), "-S", source_dir, "-B", build_dir, "-G", "Ninja"] + [f"-D{k}={v}" for k, v in defines.items()]


def read_codemodel(build_dir):
    """{target name: target JSON} from CMake's file API reply."""
    reply = os.path.join(build_dir, ".cmake", "api", "v1", "reply")
    index = json.load(open(os.path.join(reply, max(f for f in os.listdir(reply) if f.startswith("index-")))))
    codemodel = json.load(open(os.path.join(reply, index["reply"]["codemodel-v2"]["jsonFile"])))
    return {t["name"]: json.load(open(os.path.join(reply, t["jsonFile"]))) for t in codemodel["configurations"][0]["targets"]}


def _where(target, backtrace):
    """'CMakeLists.txt:93 (target_compile_options)' for a file-API backtrace index."""
    if backtrace is None:
        return "CMake default"
    graph = target["backtraceGraph"]
    node = graph["nodes"][backtrace]
    if "line" not in node:
        return graph["files"][node["file"]]
    return f"{graph['files'][node['file']]}:{node['line']} ({graph['commands'][node['command']]})"


def _flag_kind(flag):
    if "_GLIBCXX_USE_CXX11_ABI" in flag:
        return "ABI define"
    return "define" if flag.startswith("-D") else "compile option"


def _compile_items(target):
    """(kind, value, where) of every compile setting of a target's C++ sources."""
    items = []
    for group in target.get("compileGroups", []):
        if group["language"] != "CXX":
            continue
        standard = group.get("languageStandard")
        if standard:
            items.append(("C++ standard", f"C++{standard['standard']}", _where(target, standard["backtraces"][0])))
        for fragment in group.get("compileCommandFragments", []):
            for flag in shlex.split(fragment["fragment"]):
                items.append((_flag_kind(flag), flag, _where(target, fragment.get("backtrace"))))
        for define in group.get("defines", []):
            if not define["define"].endswith("_EXPORTS"):  # CMake's own, for every shared library
                items.append((_flag_kind("-D" + define["define"]), "-D" + define["define"], _where(target, define.get("backtrace"))))
        for include in group.get("includes", []):
            kind = "system include (warnings silenced)" if include.get("isSystem") else "include"
            items.append((kind, include["path"], _where(target, include.get("backtrace"))))
    return items


def _link_items(target):
    items = []
    for fragment in (target.get("link") or {}).get("commandFragments", []):
        for flag in shlex.split(fragment["fragment"]):
            # The core is every binding's, and the build-tree rpath is CMake's own, dropped at install.
            if any(core in flag for core in CORE_TARGETS) or flag.startswith("-Wl,-rpath"):
                continue
            kind = ("library dir" if flag.startswith("-L") or fragment["role"] == "libraryPath" else
                    "link option" if flag.startswith("-Wl,") or fragment["role"] == "flags" else "library")
            items.append((kind, flag, _where(target, fragment.get("backtrace"))))
    return items


def binding_settings(targets, name):
    """What the binding's target needs beyond the core library: settings (kind, value, where)
    and the workarounds visible in them."""
    core = {(kind, value) for kind, value, _ in _compile_items(targets["twinop_core"])}
    target = targets[name]
    settings = [item for item in _compile_items(target) if item[:2] not in core] + _link_items(target)
    workarounds = []
    if any("/Unity/" in s["path"] and "compileGroupIndex" in s for s in target["sources"]):
        workarounds.append("unity build: the binding's sources compiled as one translation unit (the framework headers are parsed once)")
    if any(kind.startswith("system include") and where.startswith("CMakeLists.txt") for kind, _, where in settings):
        workarounds.append("framework headers included as SYSTEM: their warnings are not ours")
    if any("--exclude-libs" in value for _, value, _ in settings):
        workarounds.append("static CUDA runtime linked before the framework library, its symbols hidden (-Wl,--exclude-libs,ALL)")
    return [dict(zip(("kind", "value", "where"), item)) for item in settings], workarounds


def read_query(build_dir, framework):
    """The framework's own answer to cmake/query_framework.py: {KEY: value}."""
    path = os.path.join(build_dir, f"{framework}_settings.cmake")
    if not framework or not os.path.exists(path):
        return {}
    answer = {}
    for line in open(path):
        key, _, value = line.strip()[len("set("):-1].partition(" ")
        answer[key] = value.strip('"')
    return answer


def build_one(source_dir, binding, with_cuda, progress):
    target_name, switches, framework = BINDINGS[binding]
    with tempfile.TemporaryDirectory(prefix=f"twinop-report-build-{binding}-") as build_dir:
        # An empty query file asks CMake to write its file API reply (the codemodel) at configure time.
        query = os.path.join(build_dir, ".cmake", "api", "v1", "query")
        os.makedirs(query)
        open(os.path.join(query, "codemodel-v2"), "w").close()
        times = {}
        times["configure"] = _run(configure_args(source_dir, build_dir, switches, with_cuda))
        if times["configure"][2].returncode:
            return {"ok": False, "stage": "configure", "error": _tail(times["configure"][2])}
        targets = read_codemodel(build_dir)
        core_targets = [t for t in CORE_TARGETS if t in targets]
        times["core"] = _run([_tool("cmake"), "--build", build_dir, "--target", *core_targets])
        if not times["core"][2].returncode:
            times["build"] = _run([_tool("cmake"), "--build", build_dir, "--target", target_name])
        failed = next((stage for stage, (_, _, result) in times.items() if result.returncode), None)
        if failed:
            return {"ok": False, "stage": failed, "error": _tail(times[failed][2], 8)}
        settings, workarounds = binding_settings(targets, target_name)
        tools = read_tools(build_dir)
        used_cuda = read_cuda_toolkit(build_dir)
        asked = read_query(build_dir, framework)
        if any("-std" in value for value in asked.values()) and not any("-std" in s["value"] for s in settings):
            workarounds.append("the framework's own -std flag dropped, CXX_STANDARD sets it")
    seconds = {f"{stage}_{kind}_s": t for stage, (wall, cpu, _) in times.items() for kind, t in (("wall", wall), ("cpu", cpu))}
    progress(f"build: {binding} configured in {seconds['configure_wall_s']:.1f} s, built in {seconds['build_wall_s']:.1f} s "
             f"(core {seconds['core_wall_s']:.1f} s)")
    return {"ok": True, **seconds, "settings": settings, "workarounds": workarounds, "framework_answer": asked,
            "tools": tools, "cuda_toolkit": used_cuda}


def missing_framework_error(source_dir, framework, scratch):
    """The configure error with the switch ON and a Python that cannot import the framework."""
    bare = os.path.join(scratch, "bare-venv")
    if not os.path.exists(bare):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", bare], check=True)
    switches = {**ALONE, SWITCH[framework]: "ON"}
    args = configure_args(source_dir, os.path.join(scratch, f"missing-{framework}"), switches, False,
                          python=os.path.join(bare, "bin", "python"))
    _, _, result = _run(args, env={**os.environ, "PYTHONPATH": "", "PYTHONNOUSERSITE": "1"})
    # CMake wraps a message(FATAL_ERROR) over indented lines after "CMake Error at ...:"; rejoin them.
    lines = result.stderr.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("CMake Error")), 0)
    body = []
    for line in lines[start:]:
        if line.startswith("--") or (body and not line.strip()):
            break
        body.append(line.strip())
    return {"failed": result.returncode != 0, "message": " ".join(filter(None, body)) or "(no message)"}


def pip_isolation_error(source_dir, framework, scratch):
    """What the framework query says under pip's build isolation (pip hides site-packages with a
    sitecustomize on PYTHONPATH, as simulated here), before the build's retry with it unset."""
    hider = os.path.join(scratch, "pip-isolation")
    os.makedirs(hider, exist_ok=True)
    with open(os.path.join(hider, "sitecustomize.py"), "w") as f:
        f.write(textwrap.dedent("""\
            import site, sys
            hidden = set(site.getsitepackages() + [site.getusersitepackages()])
            sys.path[:] = [p for p in sys.path if p not in hidden]
            """))
    query = [sys.executable, os.path.join(source_dir, "cmake", "query_framework.py"), scratch, framework]
    _, _, result = _run(query, env={**os.environ, "PYTHONPATH": hider, "PYTHONNOUSERSITE": "1"})
    return {"failed": result.returncode != 0, "message": (result.stderr.strip().splitlines() or ["(none)"])[-1]}


def mismatch_processes(frameworks):
    """Starts one process per framework that imports twinop's binding with the recorded
    framework version changed, as after upgrading the framework without rebuilding."""
    processes = {}
    for framework in frameworks:
        attr = BUILT_VERSION[framework]
        code = textwrap.dedent(f"""\
            import twinop._build_info as info
            info.{attr} = "0.0.1"
            try:
                import twinop.{PYTHON_MODULE[framework]}
                print("imported without error")
            except ImportError as error:
                print(f"{{type(error).__name__}}: {{error}}")
            """)
        # TWINOP_TORCH_ABI: the classic torch library, which has the guard (the stable-ABI one would load).
        processes[framework] = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                                stderr=subprocess.DEVNULL, text=True,
                                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TWINOP_TORCH_ABI": "classic"})
    return processes


def measure(source_dir, bindings, with_cuda, side_by_side, progress):
    """Builds `bindings` (a subset of BINDINGS), one after another or side by side (faster; the
    CPU times hold, the wall times grow), probes the failures of each framework among them, the
    installed libraries' version portability, and the edit-rebuild loop (after the builds, alone)."""
    from . import edit_loop, portability  # they import this module
    if not source_dir or not os.path.exists(os.path.join(source_dir, "CMakeLists.txt")):
        return {"available": False, "reason": f"sources not available (no CMakeLists.txt under {source_dir!r})"}
    frameworks = [b for b in bindings if b in SWITCH]
    results = {"available": True, "with_cuda": with_cuda, "side_by_side": side_by_side, "failures": {},
               "environment": {"prefix": sys.prefix, "base_prefix": sys.base_prefix, "source_dir": source_dir}}
    with ThreadPoolExecutor(max(len(bindings), 1) if side_by_side else 1) as pool:
        builds = {b: pool.submit(build_one, source_dir, b, with_cuda, progress) for b in bindings}
        results["bindings"] = {b: build.result() for b, build in builds.items()}
    results["cuda_toolkit"] = cuda_toolkit(results["bindings"], with_cuda)
    mismatch = mismatch_processes(frameworks)  # after the builds, whose timings they would disturb
    with tempfile.TemporaryDirectory(prefix="twinop-report-probes-") as scratch:
        for framework in frameworks:
            results["failures"][framework] = {
                "missing": missing_framework_error(source_dir, framework, scratch),
                "pip_isolation": pip_isolation_error(source_dir, framework, scratch),
                "mismatch": {"message": mismatch[framework].communicate()[0].strip()},
            }
            progress(f"build: {framework} failure modes probed")
    results["portability"] = portability.measure(bindings, results["failures"], source_dir)
    results["edit_loop"] = edit_loop.measure(source_dir, bindings, with_cuda, progress)
    return results
