"""The claims often made about custom ops in PyTorch and TensorFlow, each judged by a stated
criterion on one run's results. Pure functions: results dict in, verdict and its numbers out."""
import os
import re

HOLDS, FAILS, UNSETTLED = "holds", "does not hold", "not settled"

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


def boilerplate(results):
    claim = "TensorFlow needs more boilerplate than PyTorch"
    criterion = (f"non-blank, non-comment lines of the TensorFlow binding >= {MORE_BOILERPLATE:.2f}x the PyTorch "
                 "binding's (framework-integration extras such as Keras layers and nn.Modules left out)")
    data = results.get("boilerplate", {})
    if not data.get("available"):
        return _verdict(claim, criterion, UNSETTLED, f"{data.get('reason', 'boilerplate not measured')}", {})
    from .boilerplate import HIGHER_ORDER, INTEGRATION

    lines = {b: sum(n for role, n in data["by_role"].get(b, {}).items() if role != INTEGRATION) for b in ("torch", "tensorflow")}
    higher_order = {b: data["by_role"].get(b, {}).get(HIGHER_ORDER, 0) for b in ("torch", "tensorflow")}
    if not lines["torch"] or not lines["tensorflow"]:
        return _verdict(claim, criterion, UNSETTLED, "a binding's sources are missing", lines)
    ratio = lines["tensorflow"] / lines["torch"]
    numbers = {"tensorflow_lines": lines["tensorflow"], "torch_lines": lines["torch"], "ratio": round(ratio, 2),
               "tensorflow_higher_order_lines": higher_order["tensorflow"], "torch_higher_order_lines": higher_order["torch"],
               "core_lines": data["totals"].get("core", 0)}
    comparison = ("TensorFlow's is longer" if ratio >= MORE_BOILERPLATE else
                  "PyTorch's is longer" if ratio <= 1 / MORE_BOILERPLATE else "about the same")
    summary = (f"TensorFlow {lines['tensorflow']} lines vs PyTorch {lines['torch']} ({ratio:.2f}x: {comparison}), "
               f"of which second order, forward mode and batching rules {higher_order['tensorflow']} vs "
               f"{higher_order['torch']}; the shared core they wrap is {numbers['core_lines']} lines")
    return _verdict(claim, criterion, HOLDS if ratio >= MORE_BOILERPLATE else FAILS, summary, numbers)


def _cells(support, framework, api):
    return [c for c in support.get("frameworks", {}).get(framework, {}).get("cells", []) if c["api"] == api]


def _support_numbers(support, framework):
    cells = _cells(support, framework, USER_API[framework])
    devices = sorted({c["device"] for c in cells if c["status"] != "not available here"})
    supported = sum(1 for c in cells if c["dtype"] in ALLOWED and c["status"] == "supported")
    scores = [sum(error_clarity(c.get("error", ""), c["dtype"]).values()) for c in cells
              if c["dtype"] not in ALLOWED and c["status"] == "unsupported"]
    return {"devices": devices, "supported_cells": supported,
            "error_score": round(sum(scores) / len(scores), 2) if scores else None}


def support(results):
    claim = "TensorFlow supports multiple types and devices more clearly"
    criterion = ("on the devices both frameworks see, count the (dtype, device) cells of the public API that run and "
                 "match the float64 reference, and score the error for an unsupported dtype (int32, complex64) on "
                 "three points: names the argument, names the dtype given, lists the dtypes allowed. Holds when "
                 "TensorFlow is ahead on one and behind on none; settled only when a GPU was seen by both")
    data = results.get("support", {})
    torch, tf = (_support_numbers(data, f) for f in ("torch", "tensorflow"))
    numbers = {"torch": torch, "tensorflow": tf}
    bare = [c.get("error", "") for c in _cells(data, "tensorflow", BARE_TF_OP) if c["dtype"] == "int32" and "error" in c]
    if bare:
        numbers["tensorflow_without_python_checks"] = {"error": bare[0], **error_clarity(bare[0], "int32")}
    if not torch["devices"] or not tf["devices"] or torch["error_score"] is None or tf["error_score"] is None:
        return _verdict(claim, criterion, UNSETTLED, "a binding could not be probed", numbers)
    types = (f"types: {tf['supported_cells']} supported cells for TensorFlow vs {torch['supported_cells']} for PyTorch, "
             f"error score {tf['error_score']}/3 vs {torch['error_score']}/3")
    if bare:
        types += (f" (TensorFlow's own error, without twinop's Python checks: "
                  f"{sum(error_clarity(bare[0], 'int32').values())}/3)")
    if "cuda" not in torch["devices"] or "cuda" not in tf["devices"]:
        return _verdict(claim, criterion, UNSETTLED,
                        f"no GPU visible to both frameworks here, so devices were not compared; {types}", numbers)
    ahead = [tf["supported_cells"] > torch["supported_cells"], tf["error_score"] > torch["error_score"]]
    behind = [tf["supported_cells"] < torch["supported_cells"], tf["error_score"] < torch["error_score"]]
    verdict = HOLDS if any(ahead) and not any(behind) else FAILS
    return _verdict(claim, criterion, verdict, types, numbers)


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
                 "toolchain is listed apart, as pip never installs a C++ compiler. The numbers add what survives an "
                 "upgrade of the framework: whether each library loads under another version, and the framework C++ "
                 "symbols it imports")
    data = results.get("build", {})
    builds = data.get("bindings", {})
    if not data.get("available") or not all(f in builds for f in ("torch", "tensorflow")):
        return _verdict(claim, criterion, UNSETTLED, "the PyTorch and TensorFlow builds were not run", {})
    failed = {f: b for f, b in builds.items() if f in ("torch", "torch-stable", "tensorflow") and not b["ok"]}
    if failed:
        why = "; ".join(f"{f} failed at {b['stage']}: {b['error'].splitlines()[-1]}" for f, b in failed.items())
        return _verdict(claim, criterion, FAILS, why, {"failed": list(failed)})
    env = data["environment"]
    roots = tuple(os.path.join(os.path.realpath(p), "") for p in (env["prefix"], env["base_prefix"], env["source_dir"]))
    checked = [f for f in ("torch", "torch-stable", "tensorflow") if builds.get(f, {}).get("ok")]
    outside = sorted({p for f in checked for p in _paths(builds[f]["settings"])
                      if not os.path.join(os.path.realpath(p), "").startswith(roots)})
    tools = {name: path for b in builds.values() if b["ok"] for name, path in b["tools"].items()}
    isolation = {f: v["pip_isolation"]["message"] for f, v in data.get("failures", {}).items() if v["pip_isolation"]["failed"]}
    numbers = {"outside_environment": outside, "toolchain": tools, "under_pip_build_isolation": isolation}
    if outside:
        return _verdict(claim, criterion, FAILS, f"used from outside the environment: {', '.join(outside)}", numbers)
    summary = ("every framework header and library came from the packages pip installed; the toolchain: "
               + ", ".join(f"{name} {path}" for name, path in sorted(tools.items())))
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


def speed(results):
    claim = "the two run at similar speed"
    criterion = (f"twinop's PyTorch op vs its TensorFlow op in a tf.function: median times within {SIMILAR_SPEED}x "
                 "of each other at the largest size measured, for every device, dtype and pass (fwd, fwd+bwd)")
    runs = results.get("runtime", {}).get("runs", [])
    pairs = []
    for run in runs:
        for dtype in sorted({r["dtype"] for r in run["rows"]}):
            for pass_ in ("fwd", "fwd+bwd"):
                torch, tf = (_largest(run["rows"], impl, dtype, pass_) for impl in ("twinop-torch", "twinop-tf-function"))
                if torch and tf and torch["shape"] == tf["shape"]:
                    pairs.append({"device": run["device"], "dtype": dtype, "pass": pass_, "shape": torch["shape"],
                                  "torch_ms": torch["median_ms"], "tf_ms": tf["median_ms"],
                                  "tf_over_torch": round(tf["median_ms"] / torch["median_ms"], 3)})
    if not pairs:
        reason = results.get("runtime", {}).get("reason", "no size was measured for both ops")
        return _verdict(claim, criterion, UNSETTLED, f"{reason}", {"pairs": []})
    apart = [p for p in pairs if not 1 / SIMILAR_SPEED <= p["tf_over_torch"] <= SIMILAR_SPEED]
    worst = max(pairs, key=lambda p: max(p["tf_over_torch"], 1 / p["tf_over_torch"]))
    ratios = ", ".join(f"{p['device']} {p['dtype']} {p['pass']} {p['tf_over_torch']:.2f}x" for p in pairs)
    summary = f"TensorFlow/PyTorch time at the largest size: {ratios}"
    if apart:
        faster = "PyTorch" if worst["tf_over_torch"] > 1 else "TensorFlow"
        summary += f"; {len(apart)} of {len(pairs)} outside {SIMILAR_SPEED}x, {faster} faster at worst"
    return _verdict(claim, criterion, FAILS if apart else HOLDS, summary, {"pairs": pairs})


def all_verdicts(results):
    """The verdict of each claim whose axis is in results (`twinop bench` measures the runtime only)."""
    claims = (("boilerplate", boilerplate), ("support", support), ("build", pip_only), ("runtime", speed))
    return [judge(results) for axis, judge in claims if axis in results]
