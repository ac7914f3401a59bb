"""The claims often made about custom ops in PyTorch and TensorFlow, each judged by a stated
criterion on one run's results. Pure functions: results dict in, verdict and its numbers out."""
import math
import os
import re
import statistics

from .build_friction import describe_cuda_toolkit
from .runtime import ITEMSIZE

HOLDS, FAILS, PARTLY, UNSETTLED = "holds", "does not hold", "partly", "not settled"
MEASURED = "measured"  # a finding: numbers with their reading, no claim to judge

# The ops whose bindings the verdicts compare, one of each class (an elementwise op, a row
# reduction): each claim is judged on each, and holds only where it holds on both.
JUDGED_OPS = ("bias_act", "rms_norm")
MORE_BOILERPLATE = 1.10  # TF "needs more" when its binding is at least 10% longer than PyTorch's
SIMILAR_SPEED = 1.25  # "similar speed": medians within 1.25x of each other, either way

# A dtype as each framework spells it in messages (torch's c10 names, TF's attr names).
DTYPE_SPELLINGS = {
    "float32": ("float32", "float", "Float"), "float64": ("float64", "double", "Double"),
    "float16": ("float16", "half", "Half"), "bfloat16": ("bfloat16", "BFloat16"),
    "int32": ("int32", "Int"), "complex64": ("complex64", "ComplexFloat"),
}
ALLOWED = ("float32", "float64", "float16", "bfloat16")
# The public API a user calls, per framework, and what TensorFlow says without twinop's Python checks.
USER_API = {"torch": "torch eager", "tensorflow": "tf eager"}
BARE_TF_OP = "tf op, no Python wrapper"
# The backend without a kernel whose error each framework's user meets (_support_worker), and the
# registry's device names in the report's.
NO_KERNEL_BACKEND = {"torch": "SparseCPU", "tensorflow": "XLA_CPU_JIT"}
REGISTRY_DEVICES = {"CPU": "cpu", "CUDA": "cuda", "GPU": "cuda", "Host": "cpu", "Meta": "meta"}


def _verdict(claim, criterion, verdict, summary, numbers):
    return {"claim": claim, "criterion": criterion, "verdict": verdict, "summary": summary, "numbers": numbers}


def _names(message, dtype):
    return any(re.search(rf"\b{re.escape(s)}\b", message) for s in DTYPE_SPELLINGS[dtype])


def error_clarity(message, dtype):
    """What an unsupported-dtype error tells the user: the argument, the dtype given, the dtypes allowed."""
    return {
        "names_argument": bool(re.search(r"\bx\b", message)),
        "names_dtype": _names(message, dtype),
        "lists_allowed": all(_names(message, allowed) for allowed in ALLOWED),
    }


def matched_features(table, bindings=("torch", "tensorflow")):
    """The features every one of `bindings` has, in one op's feature table: lines spent on it, or
    none where the framework provides it."""
    from .boilerplate import FEATURES, PROVIDED

    def has(cell):
        return "lines" in cell or cell["status"] == PROVIDED

    return [f for f in FEATURES if all(has(table[b][f]) for b in bindings)]


def on_every_op(judged):
    """One verdict from a claim judged on each op ({op: (verdict, summary, numbers)}): holds where it
    holds on every op settled, does not hold where it holds on none, partly otherwise; not settled
    where no op is. The summary gives each op's verdict and numbers, and the ops left unsettled."""
    settled = {op: v for op, v in judged.items() if v[0] != UNSETTLED}
    kinds = {verdict for verdict, _, _ in settled.values()}
    verdict = (UNSETTLED if not settled else HOLDS if kinds == {HOLDS} else FAILS if kinds == {FAILS} else PARTLY)
    summary = "; ".join(f"**{op}** ({v}): {text}" for op, (v, text, _) in settled.items())
    unsettled = [f"not settled on {op}: {text}" for op, (v, text, _) in judged.items() if v == UNSETTLED]
    summary = "; ".join([summary] * bool(summary) + unsettled)
    numbers = {"verdict_per_op": {op: v for op, (v, _, _) in judged.items()},
               "ops": {op: n for op, (_, _, n) in judged.items()}}
    return verdict, summary, numbers


def boilerplate(results):
    claim = "TensorFlow needs more boilerplate than PyTorch"
    criterion = ("on each op (" + " and ".join(JUDGED_OPS) + "), non-blank, non-comment lines of each binding, on the "
                 "features both the PyTorch and the TensorFlow binding have (lines spent on it, or none where the "
                 "framework provides it): the op holds when TensorFlow's total is at least "
                 f"{MORE_BOILERPLATE:.2f}x PyTorch's and TensorFlow takes that much more in more of those features "
                 "than PyTorch does; partly when one of the two is so; the totals over every feature, which also count "
                 "what one framework offers and the other cannot, beside it. Holds when it holds on both ops, partly "
                 "when on one (or partly on either). Beside it, not judged: what one more op costs in each binding, "
                 "the lines of the second op's own files against the first op's")
    data = results.get("boilerplate", {})
    if not data.get("available"):
        return _verdict(claim, criterion, UNSETTLED, f"{data.get('reason', 'boilerplate not measured')}", {})
    verdict, summary, numbers = on_every_op({op: _boilerplate_on(data, op) for op in JUDGED_OPS})
    added = one_more_op(data)
    if added:
        numbers["one_more_op"] = added
        summary += "; " + _one_more_op_text(added)
    return _verdict(claim, criterion, verdict, summary, numbers)


def _boilerplate_on(data, op):
    """(verdict, summary, numbers) of the boilerplate claim on one op's feature table."""
    from .boilerplate import FEATURES, totals

    table = data["ops"].get(op, {})
    if not all(b in table for b in ("torch", "tensorflow")):
        return UNSETTLED, "a binding's sources are missing", {}
    features = matched_features(table)
    lines = {b: {f: table[b][f].get("lines", 0) for f in features} for b in ("torch", "tensorflow")}
    matched = {b: sum(lines[b].values()) for b in lines}
    if not matched["torch"]:
        return UNSETTLED, "no lines counted for PyTorch", {}
    ratio = matched["tensorflow"] / matched["torch"]
    more = {b: [f for f in features if lines[b][f] > MORE_BOILERPLATE * lines[other][f]]
            for b, other in (("tensorflow", "torch"), ("torch", "tensorflow"))}
    every = totals(table)
    numbers = {"features": features, "lines": lines, "tensorflow_lines": matched["tensorflow"],
               "torch_lines": matched["torch"], "ratio": round(ratio, 2), "more_lines": more,
               "all_features": {b: every[b] for b in ("torch", "tensorflow")},
               "core_lines": sum(data["core"].values())}
    comparison = ("TensorFlow's is longer" if ratio >= MORE_BOILERPLATE else
                  "PyTorch's is longer" if ratio <= 1 / MORE_BOILERPLATE else "about the same")
    summary = (f"on the {len(features)} features both have, TensorFlow {matched['tensorflow']} lines vs PyTorch "
               f"{matched['torch']} ({ratio:.2f}x: {comparison}); TensorFlow takes more in "
               f"{len(more['tensorflow'])} ({_feature_list(more['tensorflow'], FEATURES)}), PyTorch in "
               f"{len(more['torch'])} ({_feature_list(more['torch'], FEATURES)}); over every feature TensorFlow "
               f"{every['tensorflow']} vs PyTorch {every['torch']}")
    by_total, by_features = ratio >= MORE_BOILERPLATE, len(more["tensorflow"]) > len(more["torch"])
    verdict = HOLDS if by_total and by_features else PARTLY if by_total or by_features else FAILS
    return verdict, summary, numbers


def one_more_op(data):
    """{"own": {op: {binding: lines of the op's own files}}, "shared": {binding: lines of the files every
    op shares}}, the core counted as a binding; None with fewer than two ops. An op's own lines are
    what one more op of its kind costs in each binding, once the shared files exist."""
    from .boilerplate import BINDINGS, CORE

    ops = [op for op in JUDGED_OPS if op in data.get("ops", {})]
    if len(ops) < 2 or "files" not in data:
        return None
    columns = (*BINDINGS, CORE)
    own = {op: dict.fromkeys(columns, 0) for op in ops}
    shared = dict.fromkeys(columns, 0)
    for f in data["files"]:
        counts = own[f["op"]] if f["op"] in own else shared if f["op"] is None else None
        for part in f["parts"] if counts is not None else ():
            for binding in part["bindings"]:
                counts[binding] += part["lines"]
    return {"own": own, "shared": shared}


def _one_more_op_text(added):
    from .boilerplate import BINDINGS, CORE

    first, second = list(added["own"])[:2]
    return (f"what one more op costs, the lines of its own files ({first}, then {second}; beside them the files "
            "every op shares): " + ", ".join(
                f"{name} {added['own'][first][name]} then {added['own'][second][name]} (shared {added['shared'][name]})"
                for name in (*BINDINGS, CORE)))


def _feature_list(keys, titles):
    return ", ".join(titles[k] for k in keys) or "none"


def _cells(support, framework, api, op):
    """One API's cells of op (results from before rms_norm's name none: bias_act's)."""
    return [c for c in support.get("frameworks", {}).get(framework, {}).get("cells", [])
            if c["api"] == api and c.get("op", "bias_act") == op]


def _support_numbers(support, framework, op, user_api=USER_API):
    from .support import DTYPES, PROBES

    cells = _cells(support, framework, user_api[framework], op)
    devices = sorted({c["device"] for c in cells if c["status"] != "not available here"})
    supported = {c["device"]: [] for c in cells}
    for c in cells:
        if c["dtype"] in DTYPES[op] and c["status"] == "supported":
            supported[c["device"]].append(c["dtype"])
    scores = [sum(error_clarity(c.get("error", ""), c["dtype"]).values()) for c in cells
              if c["dtype"] in PROBES and c["status"] == "unsupported"]
    return {"devices": devices, "supported": supported,
            "error_score": round(sum(scores) / len(scores), 2) if scores else None}


def backend_error_clarity(message, framework, backend, op="bias_act"):
    """What the error for a backend without a kernel tells the user: the op, the backend asked
    for, a device that has a kernel (the CPU has one in every build)."""
    from .support import OP_NAMES

    return {"names_op": any(name in message for name in OP_NAMES[op][framework]),
            "names_backend": backend in message, "names_a_device_with_a_kernel": bool(re.search(r"\bCPU\b", message))}


def _registry_numbers(support, framework, op):
    """What the framework's registry says of op's forward: whether its signature
    declares the dtypes, and its kernels per device (dtypes None where the registry has none)."""
    from .support import OP_NAMES

    registry = support.get("registry", {}).get("frameworks", {}).get(framework, {})
    forward = registry.get("ops", {}).get(OP_NAMES[op][framework][0])
    if not forward:
        return None
    kernels = {REGISTRY_DEVICES.get(key, key.lower()): dtypes for key, dtypes in forward["kernels"].items()}
    return {"signature": forward["signature"], "declares_dtypes": bool(forward["declared_dtypes"]), "kernels": kernels,
            "built_with_cuda": registry.get("built_with_cuda", False),
            "score": int(bool(kernels)) + int(bool(kernels) and all(d is not None for d in kernels.values()))}


def _backend_numbers(support, framework, op):
    backend = NO_KERNEL_BACKEND[framework]
    probe = next((b for b in support.get("frameworks", {}).get(framework, {}).get("backends", [])
                  if b["backend"] == backend and b.get("op", "bias_act") == op), None)
    if not probe:
        return None
    clarity = backend_error_clarity(probe.get("error", ""), framework, backend, op) if "error" in probe else {}
    return {"backend": backend, **probe, **clarity, "score": sum(clarity.values())}


def support(results):
    claim = "TensorFlow supports multiple types and devices more clearly"
    criterion = ("four parts, each compared between the two frameworks: (a) the op's signature declares its dtypes, "
                 "readable without calling it (TensorFlow's op def, the torch schema); (b) the framework's own "
                 "registry lists the op's kernels per device (1 point) and the dtypes each takes (1 point), read "
                 "from a build with CUDA where nvcc is found, so the CUDA kernels register without a GPU; (c) the "
                 "error a user gets for an unsupported dtype (int32, complex64: names the argument, the dtype given, "
                 "the dtypes allowed) and for a backend without a kernel (a PyTorch sparse tensor; TensorFlow's XLA, "
                 "jit_compile=True: names the op, the backend asked for, a device that has a kernel), points added; "
                 "(d) the dtypes that run through the public API and match the float64 reference (rms_norm's half "
                 "x with a float32 weight among them), on every device both frameworks see. On each op ("
                 + " and ".join(JUDGED_OPS) + "): holds when TensorFlow is ahead on at least one part and behind on "
                 "none, partly when it is ahead on some and behind on others, does not hold when it is ahead on none. "
                 "The claim holds when it holds on both ops, partly when on one (or partly on either)")
    data = results.get("support", {})
    verdict, summary, numbers = on_every_op({op: _support_on(data, op) for op in JUDGED_OPS})
    return _verdict(claim, criterion, verdict, summary, numbers)


def _support_on(data, op):
    """(verdict, summary, numbers) of the support claim on one op's cells and registry entries."""
    calls = {f: _support_numbers(data, f, op) for f in ("torch", "tensorflow")}
    registry = {f: _registry_numbers(data, f, op) for f in ("torch", "tensorflow")}
    backend = {f: _backend_numbers(data, f, op) for f in ("torch", "tensorflow")}
    numbers = {f: {**calls[f], "registry": registry[f], "backend_error": backend[f]} for f in calls}
    bare = [c.get("error", "") for c in _cells(data, "tensorflow", BARE_TF_OP, op)
            if c["dtype"] == "int32" and "error" in c]
    if bare:
        numbers["tensorflow_without_python_checks"] = {"error": bare[0], **error_clarity(bare[0], "int32")}
    if not all(calls[f]["devices"] and calls[f]["error_score"] is not None and registry[f] and backend[f]
               for f in calls):
        return UNSETTLED, "a binding could not be probed", numbers
    both = sorted(set(calls["torch"]["devices"]) & set(calls["tensorflow"]["devices"]))
    parts = {
        "(a) dtypes declared": {f: int(registry[f]["declares_dtypes"]) for f in calls},
        "(b) registry": {f: registry[f]["score"] for f in calls},
        "(c) errors": {f: calls[f]["error_score"] + backend[f]["score"] for f in calls},
        "(d) runs": {f: sum(len(calls[f]["supported"].get(d, [])) for d in both) for f in calls},
    }
    ahead = [p for p, s in parts.items() if s["tensorflow"] > s["torch"]]
    behind = [p for p, s in parts.items() if s["tensorflow"] < s["torch"]]
    numbers.update(parts=parts, ahead=ahead, behind=behind, devices_both_see=both)
    verdict = HOLDS if ahead and not behind else PARTLY if ahead else FAILS
    return verdict, _support_summary(op, parts, registry, backend, calls, both, bare), numbers


def _kernels_text(registry):
    return ", ".join(f"{device} ({', '.join(dtypes) if dtypes is not None else 'no dtypes listed'})"
                     for device, dtypes in registry["kernels"].items())


def _support_summary(op, parts, registry, backend, calls, both, bare):
    from .support import DTYPES

    def score(part, out_of):
        return f"{parts[part]['tensorflow']:g} vs {parts[part]['torch']:g}/{out_of}"

    built = ("with CUDA" if registry["torch"]["built_with_cuda"] and registry["tensorflow"]["built_with_cuda"]
             else "without CUDA (no CUDA kernel to list)")
    text = (f"TensorFlow vs PyTorch: (a) dtypes declared {score('(a) dtypes declared', 1)} (TensorFlow's op def "
            f"`{registry['tensorflow']['signature']}`, the torch schema `{registry['torch']['signature']}`); "
            f"(b) registry {score('(b) registry', 2)}, from a build {built}: TensorFlow "
            f"{_kernels_text(registry['tensorflow'])}; PyTorch {_kernels_text(registry['torch'])}; "
            f"(c) errors {score('(c) errors', 6)}: an unsupported dtype {calls['tensorflow']['error_score']:g} vs "
            f"{calls['torch']['error_score']:g}/3, a backend without a kernel ({backend['tensorflow']['backend']} vs "
            f"{backend['torch']['backend']}) {backend['tensorflow']['score']} vs {backend['torch']['score']}/3")
    if bare:
        own = sum(error_clarity(bare[0], "int32").values())
        text += f" (TensorFlow's own dtype error, without twinop's Python checks: {own}/3)"
    text += f"; (d) dtypes that run and match on {', '.join(both)} {score('(d) runs', len(DTYPES[op]) * len(both))}"
    if "cuda" not in both:
        text += ("; not measured here: the GPU kernels running (no GPU seen by both frameworks): TensorFlow's "
                 "run nowhere on this machine, and the CUDA rows are what the registries list")
    return text


def _paths(settings):
    """Absolute directories a binding's compile and link settings point into."""
    for s in settings:
        value = s["value"][2:] if s["value"].startswith("-L") else s["value"]
        if os.path.isabs(value):
            yield value


def pip_only(results):
    claim = "both compile with nothing beyond what pip installs"
    criterion = ("the PyTorch and TensorFlow bindings build from clean, and every header and library directory they "
                 "use lies in the Python environment (its site-packages, or the interpreter's own headers); the "
                 "toolchain is listed apart, as pip never installs a C++ compiler (a system CUDA toolkit and the C "
                 "library with it; the CUDA kernels' toolkit, system or pip, is named). The numbers add what "
                 "survives an upgrade of the framework: whether each library loads under another version, and the "
                 "framework C++ symbols it imports")
    data = results.get("build", {})
    builds = data.get("bindings", {})
    if not data.get("available") or not all(f in builds for f in ("torch", "tensorflow")):
        return _verdict(claim, criterion, UNSETTLED, "the PyTorch and TensorFlow builds were not run", {})
    failed = {f: b for f, b in builds.items() if f in ("torch", "torch-stable", "tensorflow") and not b["ok"]}
    if failed:
        why = "; ".join(f"{f} failed at {b['stage']}: {b['error'].splitlines()[-1]}" for f, b in failed.items())
        return _verdict(claim, criterion, FAILS, why, {"failed": list(failed)})
    env = data["environment"]
    cuda = data.get("cuda_toolkit", {})
    accepted = (env["prefix"], env["base_prefix"], env["source_dir"], *cuda.get("toolchain_paths", []))
    roots = tuple(os.path.join(os.path.realpath(p), "") for p in accepted)
    checked = [f for f in ("torch", "torch-stable", "tensorflow") if builds.get(f, {}).get("ok")]
    outside = sorted({p for f in checked for p in _paths(builds[f]["settings"])
                      if not os.path.join(os.path.realpath(p), "").startswith(roots)})
    tools = {name: path for b in builds.values() if b["ok"] for name, path in b["tools"].items()}
    isolation = {f: v["pip_isolation"]["message"] for f, v in data.get("failures", {}).items() if v["pip_isolation"]["failed"]}
    numbers = {"outside_environment": outside, "toolchain": tools, "under_pip_build_isolation": isolation,
               "cuda_toolkit": cuda}
    if outside:
        return _verdict(claim, criterion, FAILS, f"used from outside the environment: {', '.join(outside)}", numbers)
    summary = ("every framework header and library came from the packages pip installed; the toolchain: "
               + ", ".join(f"{name} {path}" for name, path in sorted(tools.items())))
    if cuda:
        summary += "; " + describe_cuda_toolkit(cuda)
    if isolation:
        summary += ("; but under pip's default build isolation the build cannot import them ("
                    + "; ".join(isolation.values()) + "), so it retries outside that isolation")
    portable = _portability(data.get("portability", {}))
    if portable:
        summary += "; " + portable
        numbers["portability"] = {b: e for b, e in data["portability"].items() if isinstance(e, dict)}
    return _verdict(claim, criterion, HOLDS, summary, numbers)


def _portability(data):
    """What survives a framework upgrade, as measured (report/portability.py): '' if not measured."""
    if not all(b in data for b in ("torch", "torch-stable", "tensorflow")):
        return ""
    classic = [f"{name}'s {'loads' if data[b]['loads'] else 'is refused'} ({data[b]['framework_cpp_symbols']} C++ symbols "
               f"of {name} imported)" for b, name in (("torch", "torch"), ("tensorflow", "TensorFlow"))]
    stable = data["torch-stable"]
    survives = "survives it" if stable["loads"] else "was meant to, but did not load here"
    return (f"after a framework upgrade, neither classic route survives: {' and '.join(classic)} with another version; "
            f"PyTorch's stable ABI {survives} ({stable['framework_cpp_symbols']} C++ symbols of torch imported, "
            f"{stable['c_shim_functions']} C shim functions; {stable['how']}); TensorFlow has no stable ABI")


def _largest(rows, impl, dtype, pass_):
    matching = [r for r in rows if r["impl"] == impl and r["dtype"] == dtype and r["pass"] == pass_]
    return max(matching, key=lambda r: r["shape"][0] * r["shape"][1], default=None)


# The speed verdict's comparisons, TensorFlow's impls against PyTorch's (the fastest of each side;
# a side may differ per op): twinop's kernel per op into outputs neither allocates afresh where the
# binding can (TF's in a function of several calls, which share one call's fixed cost; PyTorch's
# out=, which rms_norm does not have), and each framework's own composition of the op.
SPEED_GROUPS = {
    "kernel": ("twinop's kernel per op, into outputs neither framework allocates afresh where the binding can "
               "(TensorFlow's in a tf.function of several chained calls; PyTorch's out= for bias_act, as called for "
               "rms_norm, which has no out=)", ("twinop-tf-chain",),
               {"bias_act": ("twinop-torch-out",), "rms_norm": ("twinop-torch",)}),
    "own": ("each framework's own composition of the op, its fastest form (TensorFlow: tf.function or XLA, and "
            "for rms_norm keras.layers.RMSNormalization's op; PyTorch: eager or torch.compile, for rms_norm of "
            "F.rms_norm)", ("tf-function", "tf-xla", "keras-rmsnorm"), ("torch-eager", "torch-compile")),
}
# Beside them, not judged: twinop's op as a user calls it eagerly (PyTorch's allocating its outputs:
# the allocation finding), from the sweep's one run of each.
EAGER = ("twinop's op called eagerly, one run each (PyTorch's allocating its outputs, the next finding)",
         ("twinop-tf-eager",), ("twinop-torch",))


def _timed(run, impl, dtype, pass_):
    """{"impl", "ms", "rounds": [ms per round], "shape"} of impl at the largest size: its median
    over the run's rounds where they timed it, else its sweep row; None where not measured."""
    rounds = [r for rows in run.get("rounds", []) for r in rows
              if (r["impl"], r["dtype"], r["pass"]) == (impl, dtype, pass_)]
    if rounds:
        return {"impl": impl, "ms": statistics.median(r["median_ms"] for r in rounds),
                "rounds": [r["median_ms"] for r in rounds], "shape": rounds[0]["shape"]}
    row = _largest(run["rows"], impl, dtype, pass_)
    return {"impl": impl, "ms": row["median_ms"], "rounds": [], "shape": row["shape"]} if row else None


def _speed_pair(run, dtype, pass_, tf_impls, torch_impls):
    """The fastest of tf_impls against the fastest of torch_impls at the largest size, with each
    round's ratio where both were timed in the rounds; None where a side was not measured."""
    sides = []
    for impls in (tf_impls, torch_impls):
        timed = [t for t in (_timed(run, impl, dtype, pass_) for impl in impls) if t]
        if not timed:
            return None
        sides.append(min(timed, key=lambda t: t["ms"]))
    tf, torch = sides
    if tf["shape"] != torch["shape"]:
        return None
    pair = {"device": run["device"], "dtype": dtype, "pass": pass_, "shape": tf["shape"], "tf_impl": tf["impl"],
            "torch_impl": torch["impl"], "tf_ms": tf["ms"], "torch_ms": torch["ms"],
            "tf_over_torch": round(tf["ms"] / torch["ms"], 3)}
    if tf["rounds"] and len(tf["rounds"]) == len(torch["rounds"]):
        pair.update(rounds=len(tf["rounds"]),
                    round_ratios=[round(a / b, 3) for a, b in zip(tf["rounds"], torch["rounds"])])
    return pair


def run_op(run):
    """The op a runtime run timed (runs from before rms_norm name none: bias_act)."""
    return run.get("op", "bias_act")


def _for_op(impls, op):
    """impls, or impls[op] where they differ per op."""
    return impls.get(op, ()) if isinstance(impls, dict) else impls


def _speed_pairs(runs, tf_impls, torch_impls):
    pairs = ({**pair, "op": run_op(run)} if pair else None for run in runs
             for dtype in sorted({r["dtype"] for r in run["rows"]}) for pass_ in ("fwd", "fwd+bwd")
             for pair in [_speed_pair(run, dtype, pass_, _for_op(tf_impls, run_op(run)),
                                      _for_op(torch_impls, run_op(run)))])
    return [p for p in pairs if p]


def _within(pair):
    return 1 / SIMILAR_SPEED <= pair["tf_over_torch"] <= SIMILAR_SPEED


def _pairs_text(pairs):
    return ", ".join(f"{p['device']} {p['dtype']} {p['pass']} {_ratio_text(p['tf_over_torch'])}x" + _spread(p)
                     for p in pairs)


def fixed_call_cost(run):
    """What one tf.function call adds to its ops at the largest size, per dtype and pass, from T1,
    the time of a function of one call, and q, the time per op of a function of CHAIN calls (its
    time / CHAIN), timed in the same process: with p an op's own time, T1 = fixed + p and
    CHAIN q = fixed + CHAIN p give fixed = CHAIN (T1 - q) / (CHAIN - 1)."""
    from .runtime import CHAIN

    costs = []
    for dtype in sorted({r["dtype"] for r in run["rows"]}):
        for pass_ in ("fwd", "fwd+bwd"):
            one, chain = (_largest(run["rows"], impl, dtype, pass_) for impl in ("twinop-tf-function", "twinop-tf-chain"))
            if one and chain and one["shape"] == chain["shape"]:
                t1, q = one["median_ms"], chain["median_ms"]
                costs.append({"device": run["device"], "dtype": dtype, "pass": pass_, "shape": one["shape"],
                              "per_op_ms": q, "one_call_ms": t1, "fixed_ms": CHAIN * (t1 - q) / (CHAIN - 1)})
    return costs


def speed(results):
    claim = "the two run at similar speed"
    criterion = (f"TensorFlow's time over PyTorch's within {SIMILAR_SPEED}x either way at the largest size measured, "
                 "for every device, dtype and pass (fwd, fwd+bwd), in two comparisons: "
                 + "; and ".join(title for title, _, _ in SPEED_GROUPS.values())
                 + ". On the CPU each is the median over rounds that time every impl in a fresh process, the "
                 "frameworks taking turns, so that a slow spell of the machine does not fall on one alone, with "
                 "memory on the same kind of page for both. On each op (" + " and ".join(JUDGED_OPS) + "): holds "
                 "when both comparisons are within the limit, partly when one is, does not hold when neither is. "
                 "The claim holds when it holds on both ops, partly when on one (or partly on either). Beside them, "
                 f"not judged: {EAGER[0]}, and the fixed cost of one tf.function call")
    data = results.get("runtime", {})
    runs = data.get("runs", [])
    verdict, summary, numbers = on_every_op(
        {op: _speed_on([run for run in runs if run_op(run) == op], data.get("reason")) for op in JUDGED_OPS})
    return _verdict(claim, criterion, verdict, summary, numbers)


def _speed_on(runs, reason=None):
    """(verdict, summary, numbers) of the speed claim on one op's runs."""
    groups = {name: _speed_pairs(runs, tf_impls, torch_impls)
              for name, (_, tf_impls, torch_impls) in SPEED_GROUPS.items()}
    eager = _speed_pairs(runs, *EAGER[1:])
    costs = [c for run in runs for c in fixed_call_cost(run)]
    numbers = {**{f"{name}_pairs": pairs for name, pairs in groups.items()}, "eager_pairs": eager,
               "fixed_call_costs": costs}
    if not all(groups.values()):
        missing = " and ".join(SPEED_GROUPS[name][0].split(" (")[0] for name, pairs in groups.items() if not pairs)
        return UNSETTLED, reason or f"not measured for both frameworks: {missing}", numbers
    rounds = max((p.get("rounds", 1) for pairs in groups.values() for p in pairs), default=1)
    parts = ["TensorFlow/PyTorch time at the largest size" + (
        f", median of {rounds} rounds (each round's ratio in brackets)" if rounds > 1 else "")]
    within = {}
    for name, pairs in groups.items():
        within[name] = all(_within(p) for p in pairs)
        text = f"{SPEED_GROUPS[name][0]}: {_pairs_text(pairs)}"
        apart = [p for p in pairs if not _within(p)]
        if apart:
            worst = max(pairs, key=lambda p: max(p["tf_over_torch"], 1 / p["tf_over_torch"]))
            faster = "PyTorch" if worst["tf_over_torch"] > 1 else "TensorFlow"
            text += f" ({len(apart)} of {len(pairs)} outside {SIMILAR_SPEED}x, {faster} faster at worst)"
        if name == "own":
            text += " [fastest: " + ", ".join(sorted({f"{p['tf_impl']} vs {p['torch_impl']}" for p in pairs})) + "]"
        parts.append(text)
    if eager:
        parts.append(f"not judged, {EAGER[0]}: {_pairs_text(eager)}")
    if costs:
        parts.append("a tf.function call's fixed cost, beside the time per op in a function of several: " + ", ".join(
            f"{c['device']} {c['dtype']} {c['pass']} {c['fixed_ms']:.2g} ms ({c['per_op_ms']:.3g} ms per op)"
            for c in costs))
    verdict = HOLDS if all(within.values()) else PARTLY if any(within.values()) else FAILS
    return verdict, "; ".join(parts), numbers


def _ratio_text(ratio):
    """Two decimals, or three where two would print a ratio outside the limit as the limit itself."""
    text = f"{ratio:.2f}"
    if float(text) in (SIMILAR_SPEED, round(1 / SIMILAR_SPEED, 2)) and not 1 / SIMILAR_SPEED <= ratio <= SIMILAR_SPEED:
        text = f"{ratio:.3f}"
    return text


def _spread(pair):
    ratios = pair.get("round_ratios", [])
    return f" [{', '.join(f'{r:.2f}' for r in ratios)}]" if len(ratios) > 1 else ""


def allocation(results):
    """A finding, not a claim: per binding, a call as users make it vs the same kernel into outputs
    allocated once, at the largest size, float32 (else the first dtype measured)."""
    from .runtime import PREALLOCATED, THP

    claim = "what allocating its outputs adds to a call"
    criterion = ("each binding's median time as a user calls it, against the same kernel writing into outputs "
                 "allocated once and paged in (out=), at the largest size measured; PyTorch also with "
                 "THP_MEM_ALLOC_ENABLE=1 (huge pages), in a process of its own; where a binding has no out= "
                 "(TensorFlow, JAX), the process's page faults per call say whether its outputs were fresh memory")
    items, parts = [], []
    for run in results.get("runtime", {}).get("runs", []):
        dtypes = sorted({r["dtype"] for r in run["rows"]})
        dtype = "float32" if "float32" in dtypes else (dtypes or [None])[0]
        for binding, into in PREALLOCATED[run_op(run)].items():
            times = {}
            for pass_ in ("fwd", "fwd+bwd"):
                called = _largest(run["rows"], binding, dtype, pass_)
                if not called:
                    continue
                pre = _largest(run["rows"], into, dtype, pass_) if into else None
                thp = _largest(run["rows"], THP.get(binding, ""), dtype, pass_)
                item = {"op": run_op(run), "device": run["device"], "binding": binding, "dtype": dtype, "pass": pass_,
                        "shape": called["shape"], "called_ms": called["median_ms"],
                        "preallocated_ms": pre["median_ms"] if pre else None,
                        "thp_ms": thp["median_ms"] if thp else None,
                        "page_faults": called.get("page_faults"), "fresh_memory": fresh_memory(called)}
                if pre:
                    item["allocation_share"] = allocation_share(called, pre)
                items.append(item)
                times[pass_] = item
            if times:
                parts.append(_allocation_text(f"{run_op(run)} {run['device']}", binding, times))
    if not items:
        return _verdict(claim, criterion, UNSETTLED, "no binding was timed both ways", {"items": []})
    shape = "x".join(map(str, items[0]["shape"]))
    summary = f"{items[0]['dtype']} at {shape}, fwd / fwd+bwd ms: " + "; ".join(parts)
    torch_share = max((i.get("allocation_share", 0) for i in items if i["binding"] == "twinop-torch"), default=0)
    large = math.prod(items[0]["shape"]) * ITEMSIZE.get(items[0]["dtype"], 4) >= 32 * 2**20
    if torch_share > 0.2 and large:
        # TF keeps its memory with its oneDNN options on (x86's default), not with TF_ENABLE_ONEDNN_OPTS=0.
        tf_kept = [i["fresh_memory"] is False for i in items if i["binding"] == "twinop-tf-function"]
        kept = "; TensorFlow's allocator keeps its memory" if tf_kept and all(tf_kept) else ""
        summary += (". PyTorch's CPU allocator hands blocks of 32 MiB and more back to the OS, so every call pays "
                    f"page faults on fresh memory{kept}. The kernel is the same: out= (or THP_MEM_ALLOC_ENABLE=1) "
                    "removes that cost where buffers can be reused")
    summary += _fresh_without_out(items)
    return _verdict(claim, criterion, MEASURED, summary, {"items": items})


def allocation_share(called, preallocated):
    """The share of a call as a user makes it that the same kernel into preallocated outputs does
    not take. Below zero the preallocated call measured slower, which is noise: 0."""
    return max(0.0, round(1 - preallocated["median_ms"] / called["median_ms"], 3))


def fresh_memory(row):
    """Whether a call's outputs were fresh memory: page faults for half or more of x's size in huge
    pages (2 MiB each: numpy asks for them, so 512x fewer faults than 4 KiB pages for the same
    memory). None where the faults were not counted (the GPU, or results from before they were)."""
    if row.get("page_faults") is None:
        return None
    return row["page_faults"] >= 0.5 * math.prod(row["shape"]) * ITEMSIZE.get(row["dtype"], 4) / 2**21


def _fresh_without_out(items):
    """The sentence for a binding with no out= whose outputs are fresh memory (JAX's), beside the
    same kernel's time into reused memory on the same device; '' where there is none."""
    fresh = [i for i in items if i["fresh_memory"] and not i["preallocated_ms"] and i["pass"] == "fwd"]
    if not fresh:
        return ""
    item = fresh[0]
    reused = [i["preallocated_ms"] for i in items if i["preallocated_ms"] and i["pass"] == "fwd"
              and (i["device"], i.get("op")) == (item["device"], item.get("op"))]
    if not reused:
        return ""
    kernel_ms = min(reused)
    text = (f". {item['binding']} ({item.get('op', 'bias_act')}) has no out= and its framework gives each output "
            "fresh memory "
            f"({item['page_faults']} page faults a call): {item['called_ms']:.3g} ms forward, against "
            f"{kernel_ms:.3g} ms for the same kernel into reused memory")
    if item["called_ms"] > 2 * kernel_ms:
        text += "; most of its time at this size is the operating system paging in its output"
    return text


def _no_out_text(times):
    """What a binding with no out= does with its outputs' memory, from its page faults where counted."""
    counted = [times[p] for p in ("fwd", "fwd+bwd") if times.get(p, {}).get("page_faults") is not None]
    if not counted:
        return " (no out=)"
    faults = " / ".join(str(t["page_faults"]) for t in counted)
    if any(t["fresh_memory"] for t in counted):
        return f" (no out=; {faults} page faults a call: its outputs are fresh memory on every call)"
    return f" (no out=; its allocator keeps its memory: {faults} page faults a call)"


def _allocation_text(device, binding, times):
    def both(key):
        return " / ".join(f"{times[p][key]:.3g}" if times.get(p, {}).get(key) else "-" for p in ("fwd", "fwd+bwd"))

    text = f"{device} {binding} {both('called_ms')} as called"
    if any(t.get("preallocated_ms") for t in times.values()):
        shares = " / ".join(f"{times[p]['allocation_share']:.0%}" if "allocation_share" in times[p] else "-"
                            for p in ("fwd", "fwd+bwd") if p in times)
        text += f", {both('preallocated_ms')} into preallocated outputs ({shares} of the call is allocation)"
    else:
        text += _no_out_text(times)
    if any(t.get("thp_ms") for t in times.values()):
        text += f", {both('thp_ms')} with THP_MEM_ALLOC_ENABLE=1"
    return text


# Where JAX changes the picture: one line per claim, from the same results, beside the verdicts
# (which stay about PyTorch vs TensorFlow). None where the JAX binding was not measured.
def jax_boilerplate(results):
    from .boilerplate import totals

    data = results.get("boilerplate", {})
    lines = []
    for op in JUDGED_OPS:
        table = data.get("ops", {}).get(op, {}) if data.get("available") else {}
        if all(b in table for b in ("jax", "torch")):
            features = matched_features(table, ("jax", "torch"))
            shared = totals(table, features)
            lines.append(f"{op}: {totals(table)['jax']} lines over every feature; on the {len(features)} it shares "
                         f"with PyTorch {shared['jax']} vs PyTorch's {shared['torch']}")
    if not lines:
        return None
    return "; ".join(lines) + (": XLA FFI handlers (C++) and JAX primitives with JVP, transpose and batching rules "
                               "(Python)")


def jax_support(results):
    data = results.get("support", {})
    lines = [line for line in (_jax_support_on(data, op) for op in JUDGED_OPS) if line]
    return "; ".join(lines) if lines else None


def _jax_support_on(data, op):
    if not _cells(data, "jax", "jax eager", op):
        return None
    numbers = {f: _support_numbers(data, f, op, {**USER_API, "jax": "jax eager"}) for f in ("jax", "tensorflow")}
    runs = "; ".join(f"{device} {', '.join(dtypes)}"
                     for device, dtypes in numbers["jax"]["supported"].items() if dtypes)
    line = (f"{op}: (a) no dtypes declared (the handlers take ffi::AnyBuffer); runs and matches: {runs or 'nothing'}; "
            f"dtype error {numbers['jax']['error_score']:g}/3, raised at trace time before anything runs")
    registry = _registry_numbers(data, "jax", op)
    if registry:
        line += f"; (b) its registry, XLA's FFI targets per platform: {_kernels_text(registry)}"
    if "cuda" in numbers["jax"]["devices"] and "cuda" not in numbers["tensorflow"]["devices"]:
        line += "; JAX sees the GPU that TensorFlow does not, so XLA's side of the comparison runs there"
    return line


def jax_build(results):
    build = results.get("build", {}).get("bindings", {})
    jax = build.get("jax")
    if not jax:
        return None
    if not jax["ok"]:
        return f"failed at {jax['stage']}: {jax['error'].splitlines()[-1]}"
    cpu = {b: r["configure_cpu_s"] + r["build_cpu_s"] for b, r in build.items() if r.get("ok")}
    others = ", ".join(f"{b} {cpu[b]:.0f} s" for b in ("torch", "tensorflow") if b in cpu)
    linked = [s for s in jax["settings"] if s["kind"] in ("library", "library dir", "link option")]
    return (f"{cpu['jax']:.0f} s of CPU to configure and build the binding" + (f" (vs {others})" if others else "")
            + f", {len(jax['settings'])} settings beyond the core: jaxlib's FFI headers, "
            + ("nothing of jaxlib linked" if not linked else f"{len(linked)} link settings"))


def jax_speed(results):
    pairs = []
    for run in results.get("runtime", {}).get("runs", []):
        for dtype in sorted({r["dtype"] for r in run["rows"]}):
            for pass_ in ("fwd", "fwd+bwd"):
                ours, xla = (_largest(run["rows"], impl, dtype, pass_) for impl in ("twinop-jax-jit", "jax-jit"))
                if ours and xla and ours["shape"] == xla["shape"]:
                    pairs.append(f"{run_op(run)} {run['device']} {dtype} {pass_} "
                                 f"{ours['median_ms'] / xla['median_ms']:.2f}x")
    if not pairs:
        return None
    return ("XLA, which refuses the TensorFlow op under jit_compile, calls the same kernel inside a jax.jit "
            "program; its time over XLA's own fusion of the op's composition (gelu(x + b); x rsqrt(mean(x^2) + "
            "eps) w) at the largest size: " + ", ".join(pairs))


def all_verdicts(results):
    """The verdict of each claim whose axis is in results (`twinop bench` measures the runtime only),
    with its JAX line where there is one, then the allocation finding."""
    claims = (("boilerplate", boilerplate, jax_boilerplate), ("support", support, jax_support),
              ("build", pip_only, jax_build), ("runtime", speed, jax_speed), ("runtime", allocation, None))
    verdicts = []
    for axis, judge, jax_line in claims:
        if axis in results:
            verdicts.append(judge(results))
            line = jax_line(results) if jax_line else None
            if line:
                verdicts[-1]["jax"] = line
    return verdicts
