"""The Distributed section: twinop's op inside each framework's distributed engine, one worker
per framework in its own process (_distributed_torch, _distributed_jax, _distributed_tf: each
sets up its devices before its framework starts), and the section of REPORT.md they make.

A cell's verdict is read from the measurements: works (equal to one process), clear error (the
error a user gets), silently wrong (a result off with no error), partitioned (each device runs
the op on its own shard) or replicated (XLA gathers x and every device runs the whole op)."""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from .render import _table

WORKERS = {"torch": "_distributed_torch", "jax": "_distributed_jax", "tensorflow": "_distributed_tf"}
TIMEOUT_S = 300
TOLERANCE = 1e-12  # every comparison is in float64


def run_worker(framework, compiled=False):
    """One worker's results, or {"worker_error": the last line it wrote} where it failed.
    compiled: the PyTorch tensor-parallel step also under torch.compile (~7 s more)."""
    command = [sys.executable, "-m", f"twinop.report.{WORKERS[framework]}"] + (["--compile"] if compiled else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        return {"worker_error": f"no answer in {TIMEOUT_S} s"}
    if done.returncode:
        return {"worker_error": "\n".join(done.stderr.strip().splitlines()[-20:]) or "(no output)"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(mode, progress):
    """{framework: its worker's results}; the workers run side by side."""
    with ThreadPoolExecutor(len(WORKERS)) as pool:
        jobs = {framework: pool.submit(run_worker, framework, mode == "full") for framework in WORKERS}
        results = {}
        for framework, job in jobs.items():
            results[framework] = job.result()
            progress(f"distributed: {framework} measured")
    return results


def _e(value):
    return f"{value:.1e}"


def _agreement(error, what="one process"):
    if error <= TOLERANCE:
        return "works", f"within {_e(error)} of {what}"
    return "silently wrong", f"off by {_e(error)}"


def _counts(collectives):
    """'2 all_gather_into_tensor' from CommDebugMode's {op: count}; 'none' for none."""
    return ", ".join(f"{n} {op}" for op, n in collectives.items()) or "none"


def _hlo(collectives):
    """'1 all-reduce, 1,024 B' from an HLO's [[opcode, bytes], ...]."""
    if not collectives:
        return "none"
    kinds = {}
    for opcode, _ in collectives:
        kinds[opcode] = kinds.get(opcode, 0) + 1
    return ", ".join(f"{n} {opcode}" for opcode, n in kinds.items()) + f", {sum(b for _, b in collectives):,} B"


def _torch_rows(t):
    rows = [["DDP", *_agreement(t["data_parallel"]["twinop BiasAct"]["ddp_params_error"])]]
    fsdp, control = (t["data_parallel"][m]["fsdp2_params_error"] for m in ("twinop BiasAct", "torch gelu(x + b)"))
    verdict, text = _agreement(fsdp)
    rows.append(["FSDP2 (fully_shard)", verdict, f"{text}; torch's own gelu(x + b) {_e(control)}"])
    u = t["unregistered"]
    rows.append(["DTensor, before register_dtensor_sharding()", "clear error" if u["error"] else "works",
                 f"`{u['error']}`" if u["error"] else "no error"])
    placed = t["placements"]
    worst = max(max(p["errors"]) for p in placed.values())
    local = all(not p["forward_collectives"] and not p["backward_collectives"] for p in placed.values() if p["aligned"])
    verdict = "silently wrong" if worst > TOLERANCE else "partitioned" if local else "works"
    rows.append(["DTensor, with twinop's sharding rules", verdict,
                 f"y, dx, dbias within {_e(worst)}; {'no' if local else 'some'} collectives in the op where x and bias "
                 "are sharded alike (details below)"])
    second = t["second_order"]
    failed = [k for k, v in second.items() if "error" in v]
    worst = max((max(v["errors"]) for v in second.values() if "errors" in v), default=0.0)
    rows.append(["DTensor, second order (gradient penalty)",
                 "clear error" if failed else _agreement(worst, "whole tensors")[0],
                 f"`{second[failed[0]]['error']}`" if failed else f"penalty on dx alone and on dx and dbias, both "
                 f"autograd routes: within {_e(worst)} of whole tensors"])
    tp = t["tensor_parallel"]
    verdict, text = _agreement(tp["params_error"])
    if "compiled_vs_eager_error" in tp:
        text += (f"; under torch.compile within {_e(tp['compiled_vs_eager_error'])} of eager "
                 f"(compile and first step {tp['compile_and_first_step_s']:.1f} s)")
    rows.append(["tensor parallel: Colwise Linear → BiasAct (bias Shard(0)) → Rowwise Linear", verdict,
                 f"{text}; a training step makes {_counts(tp['step_collectives'])}"])
    lm = t["local_map"]
    default, told = lm["default"], lm["in_grad_placements=Partial()"]
    rows.append(["local_map (no rule), in_grad_placements left out",
                 "silently wrong" if default["dbias_error"] > TOLERANCE else "works",
                 f"dbias labelled {default['dbias']}, off by {_e(default['dbias_error'])}: PyTorch's default; with "
                 f"in_grad_placements=Partial() {told['dbias']}, within {_e(told['dbias_error'])}"])
    if "rms_norm" in t:
        rows += _torch_rms_norm_rows(t["rms_norm"])
    return [["PyTorch", *row] for row in rows]


def _torch_rms_norm_rows(cases):
    """rms_norm's DTensor cases (rows, a sequence, features sharded) through each route, and its penalty."""
    placed = {k: v for k, v in cases.items() if not k.startswith("penalty")}
    worst = max(max(v["errors"]) for v in placed.values())
    by_rows = [v for k, v in placed.items() if not k.startswith("features")]  # whole rows on each rank
    local = all(not v["forward_collectives"] and not v["backward_collectives"] for v in by_rows)
    rows = [["rms_norm: DTensor, with twinop's sharding rules",
             "silently wrong" if worst > TOLERANCE else "partitioned" if local else "works",
             f"y, dx, dweight within {_e(worst)} in {len(placed)} cases and routes; {'no' if local else 'some'} "
             "collectives in the op where whole rows are on each rank; rows sharded by feature gathered first"]]
    penalty = {k: v for k, v in cases.items() if k.startswith("penalty")}
    failed = [k for k, v in penalty.items() if "error" in v]
    if penalty:
        worst = max((max(v["errors"]) for v in penalty.values() if "errors" in v), default=0.0)
        rows.append(["rms_norm: DTensor, second order (penalty on dx)",
                     "clear error" if failed else _agreement(worst, "whole tensors")[0],
                     f"`{penalty[failed[0]]['error']}`" if failed else f"within {_e(worst)} of whole tensors"])
    return rows


def _jax_verdict(variant, x_bytes):
    passes = variant["passes"].values()
    if max(p["error"] for p in passes) > TOLERANCE:
        return "silently wrong"
    gathered = any(op == "all-gather" and size >= x_bytes for p in passes for op, size in p["collectives"])
    return "replicated" if gathered else "partitioned"


def _jax_rows(j):
    bare = j["bare_ffi_call"]
    rows = [["jit, Auto mesh, a bare FFI call (no sharding rule)",
             "replicated" if any(op == "all-gather" and size >= j["x_bytes"] for op, size in bare["collectives"])
             else "partitioned",
             f"forward: {_hlo(bare['collectives'])}; the custom call's result on each device {bare['custom_calls'][0]} "
             f"(x is {j['x']})"]]
    how = {"Explicit": "shard_map inside the op", "Auto": "custom_partitioning", "shard_map": "the user's shard_map"}
    for name, v in j["variants"].items():
        kind = "shard_map" if name.startswith("shard_map") else v["mesh"]
        p = v["passes"]
        rows.append([f"{'jit, ' if kind != 'shard_map' else ''}{name}", _jax_verdict(v, j["x_bytes"]),
                     f"{how[kind]}; forward {_hlo(p['forward']['collectives'])}, grad {_hlo(p['grad']['collectives'])} "
                     f"(jax.nn.gelu(x + b): {_hlo(p['grad']['native_collectives'])}); "
                     f"within {_e(max(q['error'] for q in p.values()))} of jax.nn.gelu(x + b), relative"])
    for name, passes in j.get("rms_norm", {}).items():
        worst = max(q["error"] for q in passes.values())
        gathered = any(op == "all-gather" and size >= j["x_bytes"]
                       for q in passes.values() for op, size in q["collectives"])
        rows.append([name, "silently wrong" if worst > TOLERANCE else "replicated" if gathered else "partitioned",
                     f"{', '.join(passes)}: within {_e(worst)} of the composition, relative; "
                     f"grad {_hlo(passes['grad']['collectives'])}" if "grad" in passes else f"within {_e(worst)}"])
    return [["JAX", *row] for row in rows]


def _tf_rows(t):
    m = t["mirrored"]
    loop, fit = m["custom_loop"], m["keras_fit"]
    rows = []
    for name, run in (("MirroredStrategy, custom loop", loop), ("MirroredStrategy, Keras fit", fit)):
        losses = max(abs(a - b) for a, b in zip(run["losses"], run["one_device_losses"]))
        verdict, text = _agreement(max(losses, run["weights_difference"]), "one device")
        rows.append([name, verdict, f"losses and weights {text}"])
    rows[0][2] += f"; {len(loop['twinop_ops'])} twinop ops in the step, one of each per replica"
    d = t["dtensor"]
    errors = [f"{k}: `{v['error']}`" for k, v in d.items() if "error" in v]
    rows.append(["DTensor", "clear error" if errors else "works", "; ".join(errors)
                 + f" (tf.nn.gelu(x + b): layout {d['tf.nn.gelu(x + b) tf.function'].get('layout')})"])
    return [["TensorFlow", *row] for row in rows]


def _torch_details(t):
    rows = [[k, f"{p['x']} / {p['bias']}", f"{p['y']}, {p['dx']}, {p['dbias']}", _counts(p["forward_collectives"]),
             _counts(p["backward_collectives"]), _e(max(p["errors"]))] for k, p in t["placements"].items()]
    return _table(["case / route", "x / bias", "y, dx, dbias", "forward collectives", "backward collectives",
                   "largest error"], rows)


def _jax_details(j):
    rows = [[name, f"{v['x']} / {v['bias']}", pass_, _hlo(p["collectives"]), _hlo(p["native_collectives"]),
             " ".join(dict.fromkeys(p["custom_calls"])), ", ".join(p["shardings"])]
            for name, v in j["variants"].items() for pass_, p in v["passes"].items()]
    return _table(["variant", "x / bias", "pass", "twinop's collectives", "jax.nn.gelu(x + b)'s",
                   "twinop's custom calls, per device", "result shardings"], rows)


def _lines_needed(boilerplate):
    from .boilerplate import FEATURES
    from .verdicts import JUDGED_OPS

    tables = {op: boilerplate.get("ops", {}).get(op, {}) for op in JUDGED_OPS}
    per = {op: {binding: cells["distributed"]["lines"] for binding, cells in table.items()
                if "lines" in cells["distributed"]} for op, table in tables.items()}
    if not any(per.values()):
        return []
    return [f"Lines it took (feature *{FEATURES['distributed']}* in the boilerplate tables): "
            + "; ".join(f"{op}: " + ", ".join(f"{binding} {n}" for binding, n in lines.items())
                        for op, lines in per.items() if lines)
            + " (the op layouts both derive their rules from included); TensorFlow 0: MirroredStrategy needs nothing, "
            "and TF DTensor has no public way to give a custom op a layout rule.", ""]


def render(data, boilerplate):
    """The Distributed section of REPORT.md; boilerplate: that axis's results (for the lines it took)."""
    out = ["## Distributed", "",
           "twinop's op inside each framework's distributed engine, on this machine: PyTorch on 2 gloo processes "
           "(127.0.0.1), JAX on 4 virtual CPU devices, TensorFlow on 2 logical CPUs; float64 throughout, each result "
           "against the same computation on whole tensors in one process (`twinop/report/_distributed_*.py`). "
           "Collectives: PyTorch's counted by `CommDebugMode`, JAX's read from the compiled HLO with the bytes of "
           "their results.", ""]
    rows, failed = [], []
    for framework, make in (("torch", _torch_rows), ("jax", _jax_rows), ("tensorflow", _tf_rows)):
        result = data.get(framework, {})
        if "worker_error" in result:
            failed.append(f"**{framework}: not measured**: `{result['worker_error']}`")
        elif result:
            rows += make(result)
    out += [_table(["framework", "engine", "twinop", "numbers"], rows), ""] + [line + "  " for line in failed] + [""]
    out += _lines_needed(boilerplate or {})
    if "placements" in data.get("torch", {}):
        out += ["PyTorch DTensor, each placement through both autograd routes (`twinop.torch.bias_act`, the op "
                "itself):", "", _torch_details(data["torch"]), ""]
    if "variants" in data.get("jax", {}):
        out += [f"JAX, x {data['jax']['x']} ({data['jax']['x_bytes']:,} B), bias {data['jax']['bias_bytes']:,} B, "
                "each pass compiled:", "", _jax_details(data["jax"]), ""]
    return "\n".join(out)
