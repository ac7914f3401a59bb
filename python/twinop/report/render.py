"""Writes REPORT.md from the results dict: the verdicts first, then one section per measured axis."""
import collections
import re
import statistics

from .support import DTYPES, PROBES, SHAPE, TOLERANCE
from .verdicts import run_op


LABELS = {"torch-stable": "torch (stable ABI)"}  # a binding's key in results.json -> its column title


def _label(binding):
    return LABELS.get(binding, binding)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class Shortener:
    """Long absolute paths made readable: the environment, the interpreter, the checkout, temp dirs."""

    def __init__(self, env):
        self.prefixes = [(p, name) for p, name in ((env.get("source_dir"), "<src>"), (env.get("prefix"), "<env>"),
                                                   (env.get("base_prefix"), "<python>")) if p]

    def __call__(self, text):
        for prefix, name in self.prefixes:
            text = text.replace(prefix, name)
        return re.sub(r"/tmp/twinop-report-[^/\s]+", "<tmp>", text)


def header(results):
    meta = results["meta"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    return "\n".join([
        "# twinop report", "",
        f"Measured by `{meta['command']}` on {meta['created']}: **{meta['machine']}**, Python {meta['python']}, {versions}. "
        f"Mode {meta['mode']}, devices {', '.join(meta['devices'])}; the run took {meta['elapsed_s']:.0f} s. "
        "Every number below comes from this run; `results.json` holds them all.", ""])


def _feature_cell(cell, notes):
    """A feature table's cell: its lines, or its status with the number of the note saying why."""
    if "lines" in cell:
        return cell["lines"]
    if cell["why"] not in notes:
        notes.append(cell["why"])
    return f"– {cell['status']} [{notes.index(cell['why']) + 1}]"


def feature_table(data, op):
    """One op's feature x binding table, the totals over the features PyTorch and TensorFlow both
    have and over every feature, and the notes saying why a cell has no lines."""
    from .boilerplate import FEATURES, totals
    from .verdicts import matched_features

    table = data["ops"][op]
    bindings = [b for b in ("numpy", "torch", "torch-stable", "tensorflow", "jax") if b in table]
    notes = []
    rows = [[title] + [_feature_cell(table[b][key], notes) for b in bindings] for key, title in FEATURES.items()]
    if "torch" in table and "tensorflow" in table:
        both = matched_features(table)
        matched = totals(table, both)
        rows.append([f"**total, the {len(both)} features PyTorch and TensorFlow both have**"]
                    + [f"**{matched[b]}**" for b in bindings])
    rows.append(["**total, every feature**"] + [f"**{n}**" for n in totals(table).values()])
    return [_table(["feature"] + [_label(b) for b in bindings], rows), ""] + [f"[{i}] {n}  " for i, n in
                                                                            enumerate(notes, 1)] + [""]


def _parts(f):
    from .boilerplate import FEATURES

    if len(f["parts"]) < 2 and all(p["bindings"] == f["bindings"] for p in f["parts"]):
        return FEATURES.get(f["feature"], f["feature"])
    return "; ".join(f"{FEATURES[p['feature']]} {p['lines']}"
                     + (f" ({', '.join(map(_label, p['bindings']))})" if p["bindings"] != f["bindings"] else "")
                     for p in f["parts"])


def boilerplate(data, plots):
    out = ["## Boilerplate", "",
           "Non-blank lines that are not comments (C++ `//` and `/* */`, Python `#` and docstrings), counted "
           "in the sources at report time, per feature: which file serves which feature of which binding is "
           "declared once, in `twinop/report/boilerplate.py` (`ROLES`), and where a file serves several, its "
           "`twinop-feature:` comment lines split it. A feature a binding spends no lines on says why.", ""]
    if not data.get("available"):
        return "\n".join(out + [f"Not measured: {data['reason']}.", ""])
    for op in data["ops"]:
        out += [f"**{op}**", ""] + feature_table(data, op) + _image(f"boilerplate_{op}.png", f"{op} by feature", plots)
    out += one_more_op(data)
    out += ["*torch (stable ABI)* is the same ops on the LibTorch stable ABI: its column counts its own C++, the "
            "Python package it shares with *torch*, and the Python that does what its C++ cannot (typed errors, "
            "autocast, the forward-mode guard).", ""]
    out += [f"The shared core they all wrap: {sum(data['core'].values())} lines "
            f"({', '.join(f'{part} {n}' for part, n in data['core'].items())}).", ""]
    out += [_table(["file", "op", "bindings", "lines", "feature"],
                   [[f"`{f['path']}`", f["op"] or "every op", ", ".join(map(_label, f["bindings"])), f["lines"],
                     _parts(f)] for f in data["files"]]), ""]
    if data["missing"]:
        out += ["Named in the table but not in this checkout (skipped): " + ", ".join(f"`{p}`" for p in data["missing"]), ""]
    if data["unlisted"]:
        out += ["**Not in the table, so not counted:** " + ", ".join(f"`{p}`" for p in data["unlisted"]), ""]
    for path, problems in data.get("marker_problems", {}).items():
        out += [f"**`{path}`: twinop-feature lines not understood (their lines went on to the feature before):** "
                + "; ".join(f"`{p}`" for p in problems), ""]
    return "\n".join(out)


def one_more_op(data):
    """What the second op added per binding, beside the first op's own lines and the shared files."""
    from .boilerplate import BINDINGS, CORE
    from .verdicts import one_more_op as added_by_op

    added = added_by_op(data)
    if not added:
        return []
    first, second = list(added["own"])[:2]
    rows = [[_label(name), added["own"][first][name], added["own"][second][name], added["shared"][name]]
            for name in (*BINDINGS, CORE)]
    return [f"**What one more op costs.** The lines of each op's own files per binding (the files that name the op "
            f"in `ROLES`), beside the files every op shares: what {second} added once {first} had built the shared "
            "layer, and what a reader choosing a framework pays again for each op:", "",
            _table(["binding", f"{first}'s own files", f"{second}'s own files", "shared by every op"], rows), ""]


TF_GPU_NOT_RUN = ("TensorFlow could not be imported on this GPU machine: twinop's TensorFlow GPU kernels "
                  "(`csrc/tensorflow/bias_act_cuda.cc`) are compiled with CUDA, not run here.")


def support(data):
    out = ["## Type and device support", "",
           "Each binding called in its own process on each dtype and each device: forward and backward for every "
           f"activation (bias_act) or once (rms_norm) on a {SHAPE} input, compared with the float64 reference "
           "(`twinop.reference`, rtol = atol = " + ", ".join(f"{tol:.0e} {dtype}" for dtype, tol in TOLERANCE.items())
           + f"). {' and '.join(PROBES)} are probes the op must refuse: the cell shows the error a user gets.", ""]
    errors = []
    for op in DTYPES:
        rows = []
        for framework, result in data["frameworks"].items():
            if not result["cells"]:
                rows.append([framework, "", result.get("import_error") or result.get("worker_error")]
                            + [""] * (len(DTYPES[op] + PROBES) - 1))
                continue
            cells = {(c["api"], c["device"], c["dtype"]): c for c in result["cells"] if c.get("op", "bias_act") == op}
            for api, device in dict.fromkeys((api, device) for api, device, _ in cells):
                rows.append([api, device] + [_support_cell(cells.get((api, device, dtype)), errors)
                                             for dtype in DTYPES[op] + PROBES])
        out += [f"**{op}**", "", _table(["API", "device"] + list(DTYPES[op] + PROBES), rows), ""]
    out += [f"[{i}] `{_cell(e)}`  " for i, e in enumerate(errors, 1)] + [""]
    gpu_seen = any(c["device"] == "cuda" for r in data["frameworks"].values() for c in r["cells"])
    if gpu_seen and "import_error" in data["frameworks"].get("tensorflow", {}):
        out += [TF_GPU_NOT_RUN, ""]
    return "\n".join(out + backends(data) + registry(data.get("registry")))


def _support_cell(cell, errors):
    """A dtype's status, with the number of its error note, or how far off a wrong result was."""
    if cell is None:
        return "not probed"
    text = cell["status"]
    if "error" in cell:
        if cell["error"] not in errors:
            errors.append(cell["error"])
        text += f" [{errors.index(cell['error']) + 1}]"
    elif "max_error" in cell:
        text += f" (off by {cell['max_error']:.2g})"
    return text


def _cut(text, limit=320):
    return text if len(text) <= limit else text[:limit] + " …"


def backends(data):
    """The error a user meets on a backend the op has no kernel for (and what runs instead)."""
    rows = [[framework, b.get("op", "bias_act"), b["backend"], b["status"],
             f"`{_cell(_cut(b['error']))}`" if "error" in b else ""]
            for framework, result in data["frameworks"].items() for b in result.get("backends", [])]
    if not rows:
        return []
    return ["Asked for a backend or device besides the dtypes: a PyTorch tensor of another layout (sparse: no "
            "kernel; meta: the fake kernel answers with shapes), TensorFlow on the GPU with soft placement off "
            "(it cannot fall back to the CPU) and under XLA (`jit_compile=True`):", "",
            _table(["framework", "op", "backend", "status", "error"], rows), ""]


def registry(data):
    """What each framework's registry says of each op: the dtypes its signature declares, and its kernels per
    device and dtype."""
    if not data:
        return []
    rows = []
    for framework, result in data["frameworks"].items():
        if not result.get("ops"):
            rows.append([framework, "", result.get("import_error") or result.get("worker_error", ""), "", ""])
        for name, op in result.get("ops", {}).items():
            kernels = "; ".join(f"{device}: {', '.join(dtypes) if dtypes is not None else 'no dtypes listed'}"
                                for device, dtypes in op["kernels"].items())
            rows.append([framework, f"`{name}`", f"`{op['signature']}`",
                         ", ".join(op["declared_dtypes"]) if op["declared_dtypes"] else "no", kernels])
    return ["What each framework's own registry says of the ops, without calling them (TensorFlow's op def and "
            "registered kernels, PyTorch's schema and dispatcher table, XLA's FFI targets per platform), read from "
            f"a twinop {data['cuda']}:", "",
            _table(["framework", "op", "signature", "dtypes declared", "kernels registered, per device"], rows), ""]


def build(data, short, plots):
    out = ["## Build friction", ""]
    if not data.get("available"):
        return "\n".join(out + [f"Not measured: {data['reason']}.", ""])
    order = "side by side (their wall times overlap; compare CPU times)" if data["side_by_side"] else "one after another"
    out += [f"Each binding configured and built alone from an empty build directory, {order}, with CUDA "
            f"{'on' if data['with_cuda'] else 'off'}. The settings are read back from CMake's file API: what the "
            "binding's target needs beyond the core library's, and the CMakeLists.txt line that set each.", ""]
    rows = []
    for binding, b in data["bindings"].items():
        if not b["ok"]:
            rows.append([_label(binding), f"failed at {b['stage']}: {short(b['error'].splitlines()[-1])}", "", "", "", "", ""])
            continue
        stages = ("configure", "core", "build")
        rows.append([_label(binding)] + [f"{b[f'{stage}_wall_s']:.1f} / {b[f'{stage}_cpu_s']:.1f}" for stage in stages]
                    + [f"{sum(b[f'{stage}_cpu_s'] for stage in stages):.0f}", len(b["settings"]), len(b["workarounds"])])
    out += [_table(["binding", "configure s (wall / CPU)", "shared core s", "binding s", "total CPU s", "settings",
                    "workarounds"], rows), ""]
    out += _image("build.png", "build time", plots)
    for binding, b in data["bindings"].items():
        if not b["ok"]:
            continue
        out += [f"**{_label(binding)}**: settings beyond the core library's", "",
                _table(["kind", "value", "set at"], [[s["kind"], f"`{short(s['value'])}`", short(s["where"])] for s in b["settings"]]), ""]
        out += [f"- workaround: {w}" for w in b["workarounds"]] + [""]
        if b["framework_answer"]:
            out += [f"What {_label(binding)} itself said when the build asked (`cmake/query_framework.py`): "
                    + "; ".join(f"`{k}` = `{short(v)}`" for k, v in b["framework_answer"].items() if v), ""]
    tools = {name: path for b in data["bindings"].values() if b["ok"] for name, path in b["tools"].items()}
    out += ["Toolchain used: " + ", ".join(f"{name} `{short(path)}`" for name, path in tools.items()), ""]
    if data["failures"]:
        out += ["What a user sees when the framework is missing (switch ON, a Python without it), hidden by pip's "
                "build isolation (before the build's retry without it), or of another version than the one twinop "
                "was built against:", ""]
        out += [_table(["framework", "missing", "under pip's build isolation", "version mismatch"],
                       [[f, short(v["missing"]["message"]), short(v["pip_isolation"]["message"]), short(v["mismatch"]["message"])]
                        for f, v in data["failures"].items()]), ""]
    out += portability(data.get("portability", {}), short) + edit_loop(data.get("edit_loop", {}))
    return "\n".join(out)


def _loads(entry, short):
    return ("yes: " if entry["loads"] else "no: ") + short(entry["how"])


def _symbols(entry):
    shim = entry["c_shim_functions"]
    return f"{entry['framework_cpp_symbols']}" + (f" (and {shim} C shim functions)" if shim else "")


def portability(data, short):
    """Does each library load under another version of its framework, and the evidence."""
    bindings = [b for b in ("torch", "torch-stable", "tensorflow") if b in data]
    if not bindings:
        return []
    rows = [["loads under another version of its framework"] + [_loads(data[b], short) for b in bindings],
            ["C++ symbols of its framework it imports (nm)"] + [_symbols(data[b]) for b in bindings]]
    return ["**Version portability.** Whether each library loads under another version of its framework than the one "
            "it was built against. Any C++ symbol a library imports from its framework can change between releases; the "
            "stable-ABI library imports only torch's C shim. Its load under a really different torch (built here, loaded "
            "by torch 2.11 on the GPU machine) is `bench/device_stable_abi.sh`'s, not this report's. TensorFlow has no "
            "stable ABI.", "", _table([""] + [_label(b) for b in bindings], rows), ""]


def _loop_cell(step):
    if step["error"]:
        return f"failed: {step['error'].splitlines()[-1]}"
    return (f"{step['rebuild_wall_s']:.1f} + {step['reload_wall_s']:.1f} "
            f"(CPU {step['rebuild_cpu_s']:.1f} + {step['reload_cpu_s']:.1f})")


def edit_loop(data):
    """Seconds to rebuild and reload each binding after an edit, from an existing build directory."""
    if not data.get("available"):
        return [f"**Edit-rebuild loop**: not measured ({data['reason']}).", ""] if data else []
    rows = [[_label(b), f"`{e['own_file']}`", _loop_cell(e["math header"]), _loop_cell(e["own file"])]
            for b, e in data["bindings"].items()]
    return [f"**Edit-rebuild loop.** From one existing build directory holding every binding (CUDA "
            f"{'on' if data['with_cuda'] else 'off'}): touch a file, rebuild and install the binding "
            "(`cmake --build DIR --target TARGET && cmake --install DIR --prefix SITE`), then load it in a fresh "
            "process and run the op once. Seconds, wall (CPU), rebuild + reload:", "",
            _table(["binding", "its own file", f"after touching `{data['math_header']}`", "after touching its own file"],
                   rows), ""]


def _shape(shape):
    return "x".join(map(str, shape))


def _image(name, alt, plots):
    return [f"![{alt}]({name})", ""] if name in plots else []


HOST_BOUND_NOTE = ("\\* host-bound: Python queued these calls slower than the GPU ran them, even behind an "
                   "80 ms spin: the time is the host's per call, not the kernels'.")


def _ms(row):
    return f"{row['median_ms']:.3g}" + ("\\*" if row.get("host_bound") else "")


def runtime_run(run, plots):
    op = run_op(run)
    out = [f"### {op}, {run['device']}: {run.get('machine') or 'unknown machine'}", ""]
    for dtype in sorted({r["dtype"] for r in run["rows"]}):
        rows = [r for r in run["rows"] if r["dtype"] == dtype]
        shapes = sorted({tuple(r["shape"]) for r in rows}, key=lambda s: s[0] * s[1])
        table = []
        for impl, pass_ in dict.fromkeys((r["impl"], r["pass"]) for r in rows):
            by_shape = {tuple(r["shape"]): r for r in rows if (r["impl"], r["pass"]) == (impl, pass_)}
            largest = by_shape.get(shapes[-1])
            table.append([impl, pass_] + [_ms(by_shape[s]) if s in by_shape else "" for s in shapes]
                         + [f"{largest['GBps']:.1f}" if largest else "", f"{largest['copy_fraction']:.0%}" if largest else ""])
        copy = {(c["framework"], tuple(c["shape"])): c for c in run["copy"] if c["dtype"] == dtype}
        for framework in dict.fromkeys(f for f, _ in copy):
            largest = copy.get((framework, shapes[-1]))
            table.append([f"*{framework} copy*", "copy"] + [_ms(copy[(framework, s)]) if (framework, s) in copy else ""
                                                            for s in shapes] + [f"{largest['GBps']:.1f}" if largest else "", ""])
        out += [f"**{dtype}**, median ms per call:", "",
                _table(["impl", "pass"] + [_shape(s) for s in shapes] + [f"GB/s at {_shape(shapes[-1])}", "of copy's GB/s"], table), ""]
        if any(r.get("host_bound") for r in rows + list(copy.values())):
            out += [HOST_BOUND_NOTE, ""]
        out += _image(f"runtime_{run['device']}_{op}_{dtype}.png", f"{op} {run['device']} {dtype}", plots)
    out += allocation_table(run)
    out += rounds_table(run) + fixed_cost_lines(run)
    if run["overhead"]:
        out += [f"Call overhead at {_shape(run['overhead'][0]['shape'])} {run['overhead'][0]['dtype']}, median microseconds per call:", "",
                _table(["impl", "pass", "µs"], [[r["impl"], r["pass"], f"{r['median_us']:.1f}"] for r in run["overhead"]]), ""]
        out += _image(f"overhead_{run['device']}_{op}.png", f"{op} call overhead", plots)
    out += [f"- skipped: {s['impl']}: {s['reason']}" for s in run["skipped"]] + [""]
    return "\n".join(out)


def allocation_table(run):
    """Each binding as a user calls it next to the same kernel into preallocated outputs."""
    from .runtime import PREALLOCATED, THP
    from .verdicts import allocation_share, fresh_memory

    shapes = sorted({tuple(r["shape"]) for r in run["rows"]}, key=lambda s: s[0] * s[1])
    if not shapes:
        return []
    by_key = {(r["impl"], r["dtype"], r["pass"]): r for r in run["rows"] if tuple(r["shape"]) == shapes[-1]}
    table = []
    for dtype in sorted({r["dtype"] for r in run["rows"]}):
        for binding, into in PREALLOCATED[run_op(run)].items():
            for pass_ in ("fwd", "fwd+bwd"):
                called = by_key.get((binding, dtype, pass_))
                if not called:
                    continue
                pre = by_key.get((into, dtype, pass_))
                thp = by_key.get((THP.get(binding), dtype, pass_))
                table.append([binding, dtype, pass_, f"{called['median_ms']:.3g}", called.get("page_faults", ""),
                              f"{pre['median_ms']:.3g}" if pre else "no out= for this pass" if into
                              else _no_out(fresh_memory(called)),
                              f"{allocation_share(called, pre):.0%}" if pre else "",
                              f"{thp['median_ms']:.3g}" if thp else ""])
    if not table:
        return []
    return [f"What allocating the outputs costs, at {_shape(shapes[-1])}: median ms as a user calls each binding "
            "(with the process's page faults per call: each 4 KiB page of fresh memory faults once), and the same "
            "kernel writing into outputs allocated once and paged in (out=); PyTorch also with "
            "THP_MEM_ALLOC_ENABLE=1 (its huge-page switch, in a process of its own):", "",
            _table(["binding", "dtype", "pass", "as called", "page faults a call", "into preallocated outputs",
                    "share that is allocation", "THP_MEM_ALLOC_ENABLE=1"], table), ""]


def _no_out(fresh):
    """The preallocated column of a binding with no out=, by what its page faults showed (None: not counted)."""
    return {True: "no out=; fresh memory every call", False: "no out=; its allocator keeps its memory",
            None: "no out="}[fresh]


def rounds_table(run):
    """The speed verdict's comparison, round by round (runtime.HEAD_TO_HEAD)."""
    times = collections.defaultdict(list)  # (impl, dtype, pass) -> median ms in each round
    for rows in run.get("rounds", []):
        for r in rows:
            times[(r["impl"], r["dtype"], r["pass"])].append(r["median_ms"])
    if not times:
        return []
    table = []
    for dtype in sorted({dtype for _, dtype, _ in times}):
        for pass_ in ("fwd", "fwd+bwd"):
            medians = {impl: statistics.median(ms) for (impl, d, p), ms in times.items() if (d, p) == (dtype, pass_)}
            fastest = min(medians.values(), default=0)
            table += [[impl, dtype, pass_, ", ".join(f"{ms:.3g}" for ms in times[(impl, dtype, pass_)]),
                       f"{median:.3g}", f"{median / fastest:.2f}x"] for impl, median in medians.items()]
    from .runtime import CHAIN

    shape = _shape(next(r["shape"] for rows in run["rounds"] for r in rows))
    out = [f"The speed verdict's impls at {shape}, in {len(run['rounds'])} rounds: a fresh process per framework per "
           "round, the frameworks taking turns, so that a slow spell of the machine falls on each in turn, every "
           "binding's memory on the same kind of page (NUMPY_MADVISE_HUGEPAGE=0: numpy's large arrays otherwise ask "
           "for huge pages, which PyTorch's and TensorFlow's allocators do not); median ms per call, per op for "
           f"twinop-tf-chain (a tf.function of {CHAIN} calls, each on the one before's output):", "",
           _table(["impl", "dtype", "pass", "each round", "median of the rounds", "of the fastest"], table), ""]
    return out


def fixed_cost_lines(run):
    """What one tf.function call adds to its ops, from the function of one call and the chain."""
    from .runtime import CHAIN
    from .verdicts import fixed_call_cost

    costs = fixed_call_cost(run)
    if not costs:
        return []
    return [f"What one tf.function call adds to its ops at {_shape(costs[0]['shape'])}, from T1, the time of a function "
            f"of one call, and q, the time per op of one of {CHAIN} calls (its time / {CHAIN}), in one process: fixed "
            f"cost = {CHAIN} (T1 - q) / {CHAIN - 1}: "
            + "; ".join(f"{c['dtype']} {c['pass']} {c['fixed_ms']:.3g} ms (T1 {c['one_call_ms']:.3g}, "
                        f"q {c['per_op_ms']:.3g})" for c in costs) + ".", ""]


def runtime(data, plots):
    out = ["## Runtime", "",
           "Produced by `twinop/report/runtime.py` (its docstrings state the method), for two ops of two classes: "
           "y = gelu(x + bias), elementwise, and y = x / sqrt(mean(x^2 over the last axis) + 1e-6) * weight "
           "(rms_norm), a row reduction, by twinop's bindings and by each framework's own ops (for rms_norm: "
           "`F.rms_norm`, eager and under torch.compile; the composition in tf.function and with XLA; "
           "`keras.ops.rms_normalization`, the op `keras.layers.RMSNormalization` calls, as keras-rmsnorm; the "
           "composition under jax.jit), one framework per process. GB/s counts the bytes a pass "
           "must move at least; *of copy's GB/s* compares it with a plain copy of x in the same framework.", ""]
    if not data.get("available"):
        return "\n".join(out + [f"Not measured: {data['reason']}.", ""])
    for device, error in data.get("errors", {}).items():
        out += [f"**{device}: failed**: `{_cell(error)}`", ""]
    return "\n".join(out + [runtime_run(run, plots) for run in data["runs"]])


def verdicts(items):
    """The verdicts first: a line each, then each with its criterion, the numbers it judged, and
    where JAX, the third framework, changes the picture."""
    out = ["## Verdicts", "", "Claims often made about custom ops in PyTorch and TensorFlow, each judged on this run's "
           "numbers by the criterion stated under it.", "",
           _table(["claim", "verdict"], [[f"“{v['claim']}”", f"**{v['verdict']}**"] for v in items]), ""]
    for v in items:
        out += [f"### “{v['claim']}”: {v['verdict']}", "", f"*Criterion:* {v['criterion']}.", "",
                f"*Numbers:* {v['summary']}.", ""]
        if v.get("jax"):
            out += [f"*JAX, the third framework:* {v['jax']}.", ""]
    return "\n".join(out)


def report(results, plots):
    """REPORT.md's text; plots: the PNG names written next to it."""
    short = Shortener(results.get("build", {}).get("environment", results["meta"]["environment"]))
    parts = [header(results), verdicts(results["verdicts"])]
    if "boilerplate" in results:
        parts.append(boilerplate(results["boilerplate"], plots))
    if "support" in results:
        parts.append(support(results["support"]))
    if "build" in results:
        parts.append(build(results["build"], short, plots))
    if "runtime" in results:
        parts.append(runtime(results["runtime"], plots))
    if "distributed" in results:
        from .distributed import render as distributed  # it imports this module's _table

        parts.append(distributed(results["distributed"], results.get("boilerplate")))
    return "\n".join(parts)
