"""Axis 1, boilerplate: non-blank, non-comment lines each binding spends on each feature (op
registration, the kernel wrapper, gradients, batching, out=, ...), counted from the source files
at report time, next to the size of the shared core they all wrap.

Which file serves which feature of which binding is declared once, in ROLES. Where a file serves
several features, comment lines split it: `// twinop-feature: <feature>` (`#` in Python) gives
the lines after it to that feature, or to that feature of some of the file's bindings only
(`twinop-feature: mixed-precision (torch-stable)`), up to the next such line;
`twinop-feature: end` gives them back to the file's own. No share is guessed.

A feature a binding spends no lines on is explained in WITHOUT_LINES: provided by the framework,
not possible in it, or not built by twinop."""
import ast
import collections
import io
import os
import re
import tokenize

CORE = "core"
TORCH_STABLE = "torch-stable"  # the PyTorch op on the LibTorch stable ABI; its column reads "torch (stable ABI)"
BINDINGS = ("numpy", "torch", TORCH_STABLE, "tensorflow", "jax")
TORCH = ("torch", TORCH_STABLE)  # the Python package both PyTorch libraries load under

# Every feature a binding may spend lines on, in the table's order.
FEATURES = {
    "registration": "op/schema registration",
    "wrapper": "kernel wrapper and dtype dispatch",
    "shapes": "shape inference or fake kernel",
    "gradient": "first-order gradient",
    "second-order": "second order",
    "forward-mode": "forward mode",
    "batching": "batching (vmap / pfor)",
    "out": "out= (into the caller's buffer)",
    "buffer-reuse": "in-place buffer reuse",
    "compiled": "compiled-graph integration",
    "mixed-precision": "mixed precision (autocast)",
    "module": "module / layer",
    "distributed": "distributed (sharding rules)",
    "loader": "loader and Python API",
}
CORE_PARTS = ("shared core (C++)", "shared core (CUDA)")

PROVIDED, NOT_POSSIBLE, NOT_BUILT = "provided by the framework", "not possible in this framework", "not built"
NO_AUTODIFF = "numpy has no autodiff"
# (binding, feature) -> (status, why), for every feature a binding spends no lines on.
WITHOUT_LINES = {
    ("numpy", "shapes"): (NOT_POSSIBLE, "numpy runs every call eagerly: there is no graph to infer shapes for"),
    ("numpy", "gradient"): (NOT_POSSIBLE, NO_AUTODIFF),
    ("numpy", "forward-mode"): (NOT_POSSIBLE, NO_AUTODIFF),
    ("numpy", "batching"): (NOT_POSSIBLE, "numpy has no function transforms"),
    ("numpy", "buffer-reuse"): (NOT_POSSIBLE, "a function cannot know that nobody else holds an array: the caller "
                                              "asks for it with out=x"),
    ("numpy", "compiled"): (NOT_POSSIBLE, "numpy has no graph compiler"),
    ("numpy", "mixed-precision"): (NOT_POSSIBLE, "numpy has no autocast"),
    ("numpy", "module"): (NOT_POSSIBLE, "numpy has no layers"),
    ("numpy", "distributed"): (NOT_POSSIBLE, "numpy has no distributed engine"),
    **{(binding, "buffer-reuse"): (NOT_POSSIBLE, "PyTorch's dispatcher does not tell a kernel that nobody else "
                                                 "holds an input: the caller asks for it with out=x")
       for binding in TORCH},
    ("tensorflow", "batching"): (NOT_POSSIBLE, "no public batching rule for a custom op: tf.vectorized_map falls "
                                               "back to a while_loop (pfor's RegisterPFor is private)"),
    ("tensorflow", "out"): (NOT_POSSIBLE, "a TensorFlow op has no out= argument: its kernel allocates its outputs "
                                          "(computing in an input's buffer where it may, the next row)"),
    ("tensorflow", "compiled"): (PROVIDED, "tf.function and SavedModel take the op as it is (a SavedModel is "
                                           "loaded after `import twinop.tf`)"),
    ("tensorflow", "distributed"): (NOT_POSSIBLE, "TF DTensor has no public way to give a custom op a layout "
                                                  "rule (MirroredStrategy's data parallelism needs none, as "
                                                  "PyTorch's DDP and FSDP2 need none)"),
    ("tensorflow", "mixed-precision"): (PROVIDED, "Keras casts a layer's inputs and weights under a mixed-precision "
                                                  "policy; TensorFlow has no autocast for ops outside layers"),
    ("jax", "out"): (NOT_POSSIBLE, "JAX arrays are immutable"),
    ("jax", "buffer-reuse"): (NOT_BUILT, "jax.ffi.ffi_call's input_output_aliases would let XLA give an output "
                                         "an input's buffer"),
    ("jax", "compiled"): (PROVIDED, "jax.jit traces the FFI call as it is"),
    ("jax", "mixed-precision"): (NOT_POSSIBLE, "JAX has no autocast: the caller casts"),
    ("jax", "module"): (NOT_POSSIBLE, "JAX itself has no layers (Flax and Equinox each have their own)"),
}

# (op, binding, feature) -> (status, why), where one op differs from the binding's rule above.
OP_WITHOUT_LINES = {
    ("rms_norm", "numpy", "second-order"): (NOT_BUILT, "no fused double backward for RMSNorm: the frameworks "
                                                       "differentiate its backward's formula, numpy has no autodiff"),
    ("rms_norm", "tensorflow", "forward-mode"): (PROVIDED, "tf.autodiff.ForwardAccumulator builds JVPs from the "
                                                           "backward ops' gradients (second order), exact to any order"),
}

Role = collections.namedtuple("Role", "bindings feature op", defaults=("bias_act",))


def shared(bindings, feature):
    """The role of a file every op of a binding uses (op None: counted in each op's table)."""
    return Role(bindings, feature, None)


# The one place that says which file serves which feature of which binding, and of which op. A
# file under a binding folder that is missing here fails tests/test_report.py, so the counts stay
# true as files are added.
ROLES = {
    "csrc/torch/binding.h": shared(("torch",), "wrapper"),
    "csrc/torch/bias_act_ops.cpp": Role(("torch",), "registration"),
    "csrc/torch/bias_act_binding.h": Role(("torch",), "wrapper"),
    "csrc/torch/bias_act_cpu.cpp": Role(("torch",), "wrapper"),
    "csrc/torch/bias_act_cuda.cpp": Role(("torch",), "wrapper"),
    "csrc/torch/bias_act_autocast.cpp": Role(("torch",), "mixed-precision"),
    "csrc/torch/bias_act_out_autograd.cpp": Role(("torch",), "out"),
    # One file per (op, framework) from the second op on: schema, kernels, autocast, registration.
    "csrc/torch/rms_norm.cpp": Role(("torch",), "wrapper", "rms_norm"),
    # The stable-ABI library: its own C++, the Python package it shares with the classic library,
    # and the Python that does what its C++ cannot (typed errors, autocast, the forward-mode guard).
    "csrc/torch_stable/binding.h": shared((TORCH_STABLE,), "wrapper"),
    "csrc/torch_stable/bias_act_ops.cpp": Role((TORCH_STABLE,), "registration"),
    "csrc/torch_stable/bias_act_binding.h": Role((TORCH_STABLE,), "wrapper"),
    "csrc/torch_stable/bias_act_cpu.cpp": Role((TORCH_STABLE,), "wrapper"),
    "csrc/torch_stable/bias_act_cuda.cpp": Role((TORCH_STABLE,), "wrapper"),
    "csrc/torch_stable/rms_norm.cpp": Role((TORCH_STABLE,), "wrapper", "rms_norm"),
    "python/twinop/torch/_out_autograd.py": Role((TORCH_STABLE,), "out"),
    # The stable library's autocast and forward-mode guard: tables of every op's policies.
    "python/twinop/torch/_autocast.py": shared(TORCH, "mixed-precision"),
    "python/twinop/torch/_dual_check.py": shared(TORCH, "forward-mode"),
    "python/twinop/torch/_checks.py": Role(TORCH, "loader"),
    "python/twinop/torch/_autograd.py": Role(TORCH, "gradient"),
    "python/twinop/torch/_second_order.py": Role(TORCH, "second-order"),
    "python/twinop/torch/_function.py": Role(TORCH, "forward-mode"),  # and the Function torch.func needs
    "python/twinop/torch/_no_derivative.py": shared(TORCH, "second-order"),
    # RMSNorm's Python, split by feature inside: fakes, autograd, batching; Functions and entry points.
    "python/twinop/torch/_rms_norm_ops.py": Role(TORCH, "loader", "rms_norm"),
    "python/twinop/torch/_rms_norm.py": Role(TORCH, "forward-mode", "rms_norm"),
    "python/twinop/torch/_vmap.py": Role(TORCH, "batching"),
    "python/twinop/torch/_fake.py": Role(TORCH, "shapes"),
    "python/twinop/torch/_bias_act.py": Role(TORCH, "loader"),
    "python/twinop/torch/_library.py": shared(TORCH, "loader"),
    "python/twinop/torch/__init__.py": shared(TORCH, "loader"),
    "python/twinop/torch/module.py": Role(TORCH, "module"),
    "python/twinop/torch/_sharding.py": shared(TORCH, "distributed"),  # every op's rules, from _layouts.py
    "csrc/tensorflow/binding.h": shared(("tensorflow",), "wrapper"),
    "csrc/tensorflow/feature_shapes.h": shared(("tensorflow",), "shapes"),
    "csrc/tensorflow/feature_shapes.cc": shared(("tensorflow",), "shapes"),
    "python/twinop/tf/_tensors.py": shared(("tensorflow",), "loader"),
    "csrc/tensorflow/bias_act_ops.cc": Role(("tensorflow",), "registration"),
    "csrc/tensorflow/bias_act_binding.h": Role(("tensorflow",), "wrapper"),
    "csrc/tensorflow/bias_act_cpu.cc": Role(("tensorflow",), "wrapper"),
    "csrc/tensorflow/bias_act_cuda.cc": Role(("tensorflow",), "wrapper"),
    "csrc/tensorflow/bias_act_shapes.h": Role(("tensorflow",), "shapes"),
    "csrc/tensorflow/bias_act_shapes.cc": Role(("tensorflow",), "shapes"),
    # The third-order refusal in BiasActGradGrad's gradient, which ForwardAccumulator differentiates.
    "csrc/tensorflow/third_order_kernel.cc": Role(("tensorflow",), "forward-mode"),
    "python/twinop/tf/_gradient.py": Role(("tensorflow",), "gradient"),
    "python/twinop/tf/_second_order.py": Role(("tensorflow",), "second-order"),
    "python/twinop/tf/_library.py": shared(("tensorflow",), "loader"),
    "python/twinop/tf/_bias_act.py": Role(("tensorflow",), "loader"),
    "python/twinop/tf/__init__.py": Role(("tensorflow",), "loader"),
    "python/twinop/tf/layer.py": Role(("tensorflow",), "module"),
    # RMSNorm's: op definitions, shape functions and CPU kernels in one file, the kernel classes,
    # the GPU kernels; its Python split by feature inside: entry points and layer, gradients.
    "csrc/tensorflow/rms_norm.cc": Role(("tensorflow",), "registration", "rms_norm"),
    "csrc/tensorflow/rms_norm_binding.h": Role(("tensorflow",), "wrapper", "rms_norm"),
    "csrc/tensorflow/rms_norm_cuda.cc": Role(("tensorflow",), "wrapper", "rms_norm"),
    "python/twinop/tf/_rms_norm.py": Role(("tensorflow",), "loader", "rms_norm"),
    "python/twinop/tf/_rms_norm_gradient.py": Role(("tensorflow",), "gradient", "rms_norm"),
    # JAX: XLA FFI handlers loaded with ctypes, registered as custom-call targets from Python.
    "csrc/jax/binding.h": shared(("jax",), "wrapper"),  # and the two ends of every op's trace-time check
    "csrc/jax/bias_act_ops.h": Role(("jax",), "registration"),
    "python/twinop/jax/_ffi.py": Role(("jax",), "registration"),
    "csrc/jax/bias_act_binding.h": Role(("jax",), "wrapper"),
    "csrc/jax/bias_act_cpu.cpp": Role(("jax",), "wrapper"),
    "csrc/jax/xla_parallel_for.h": shared(("jax",), "wrapper"),
    "csrc/jax/bias_act_cuda.cpp": Role(("jax",), "wrapper"),
    # JAX knows every shape at trace time: the bias_act_args.h rules asked there, as shape functions are.
    "csrc/jax/bias_act_shapes.cpp": Role(("jax",), "shapes"),
    "python/twinop/jax/_gradient.py": Role(("jax",), "gradient"),
    # Primitives rather than a custom_vjp: what forward mode costs (a linear tangent primitive whose
    # transpose is the fused backward), counted with it.
    "python/twinop/jax/_primitive.py": shared(("jax",), "forward-mode"),
    "python/twinop/jax/_ops.py": Role(("jax",), "forward-mode"),
    "python/twinop/jax/_second_order.py": Role(("jax",), "second-order"),
    "python/twinop/jax/_vmap.py": Role(("jax",), "batching"),
    "python/twinop/jax/_library.py": shared(("jax",), "loader"),  # every op's targets and checks
    "python/twinop/jax/_bias_act.py": Role(("jax",), "loader"),
    "python/twinop/jax/__init__.py": shared(("jax",), "loader"),
    "python/twinop/jax/_sharding.py": shared(("jax",), "distributed"),  # every op's, from _layouts.py
    "python/twinop/jax/_auto_partitioning.py": shared(("jax",), "distributed"),
    # RMSNorm: its handlers in one file; its Python split by feature inside (the tangents' and
    # backwards' rules, the formulas their JVPs differentiate).
    "csrc/jax/rms_norm.cpp": Role(("jax",), "wrapper", "rms_norm"),
    "python/twinop/jax/_rms_norm_ffi.py": Role(("jax",), "registration", "rms_norm"),
    "python/twinop/jax/_rms_norm_ops.py": Role(("jax",), "forward-mode", "rms_norm"),
    "python/twinop/jax/_rms_norm_math.py": Role(("jax",), "second-order", "rms_norm"),
    "python/twinop/jax/_rms_norm_vmap.py": Role(("jax",), "batching", "rms_norm"),
    "python/twinop/jax/_rms_norm.py": Role(("jax",), "loader", "rms_norm"),
    # The ops' layouts, from which both PyTorch's and JAX's sharding rules are derived.
    "python/twinop/_layouts.py": shared(TORCH + ("jax",), "distributed"),
    # pybind11 defines the module, converts and dispatches in one file; numpy lends no thread pool,
    # so the binding starts its own threads.
    "csrc/numpy/module.cpp": shared(("numpy",), "registration"),
    "csrc/numpy/binding.h": shared(("numpy",), "wrapper"),
    "csrc/numpy/bias_act.cpp": Role(("numpy",), "wrapper"),
    "csrc/numpy/rms_norm.cpp": Role(("numpy",), "wrapper", "rms_norm"),
    "csrc/numpy/thread_parallel_for.h": shared(("numpy",), "wrapper"),
    "python/twinop/numpy.py": shared(("numpy",), "loader"),
    **{path: shared((CORE,), CORE_PARTS[0]) for path in (
        "csrc/core/types.h", "csrc/core/half_cpu.h", "csrc/core/half_cpu.cpp", "csrc/core/arg_checks.h",
        "csrc/core/compute_type.h", "csrc/core/cpu_clones.h", "csrc/core/cuda_stream.h", "csrc/core/parallel_for.h",
        "csrc/core/storage_dispatch.h")},
    **{path: Role((CORE,), CORE_PARTS[0]) for path in (
        "csrc/core/activation_math.h", "csrc/core/bias_act.h", "csrc/core/bias_act_cpu.cpp",
        "csrc/core/bias_act_args.h", "csrc/core/dispatch.h")},
    **{path: Role((CORE,), CORE_PARTS[0], "rms_norm") for path in (
        "csrc/core/rms_norm.h", "csrc/core/rms_norm_cpu.cpp", "csrc/core/rms_norm_args.h")},
    **{path: shared((CORE,), CORE_PARTS[1]) for path in (
        "cuda/bias_act_cuda.h", "cuda/bias_act_forward.cu", "cuda/bias_act_backward.cu",
        "cuda/bias_act_double_backward.cu", "cuda/column_sums.cuh", "cuda/compute_type.cuh", "cuda/cuda_check.h",
        "cuda/partial_row_sums.cuh", "cuda/storage_dispatch.cuh", "cuda/tile_launch.cuh", "cuda/vector_io.cuh")},
    # The row layout (row_launch.cuh, row_reduce.cuh) is generic, but RMSNorm is its one op so far.
    **{path: Role((CORE,), CORE_PARTS[1], "rms_norm") for path in (
        "cuda/rms_norm_cuda.h", "cuda/rms_norm_plan.cuh", "cuda/rms_norm_rows.cuh", "cuda/rms_norm_forward.cu",
        "cuda/rms_norm_backward.cu", "cuda/row_launch.cuh", "cuda/row_reduce.cuh")},
}

# Where binding and core sources live: every source file under these must be in ROLES.
BINDING_FOLDERS = ("csrc/torch", "csrc/torch_stable", "csrc/tensorflow", "csrc/numpy", "csrc/jax", "csrc/core", "cuda",
                   "python/twinop/torch", "python/twinop/tf", "python/twinop/jax")
BINDING_FILES = ("python/twinop/numpy.py",)
SOURCE_SUFFIXES = (".h", ".hpp", ".cc", ".cpp", ".cu", ".cuh", ".py")

MARKER = re.compile(r"^\s*(?://|#)\s*twinop-feature:\s*(?P<feature>[\w-]+)(?:\s*\((?P<bindings>[\w\s,-]+)\))?\s*$")


def cpp_code_lines(text):
    """Numbers (from 1) of the lines holding code once `//` and `/* */` comments are removed
    (string literals kept)."""
    code_lines = set()
    line, i, n = 1, 0, len(text)
    state = None  # None (code), "block" comment, or the quote character of a literal
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            if state not in ("block", '"', "'"):
                state = None
        elif state == "block":
            if text.startswith("*/", i):
                state, i = None, i + 1
        elif state in ('"', "'"):
            code_lines.add(line)
            if c == "\\":
                i += 1
            elif c == state:
                state = None
        elif state == "line":
            pass
        elif text.startswith("//", i):
            state = "line"
        elif text.startswith("/*", i):
            state, i = "block", i + 1
        elif not c.isspace():
            code_lines.add(line)
            if c in "\"'":
                state = c
        i += 1
    return code_lines


def count_cpp(text):
    return len(cpp_code_lines(text))


def _docstring_lines(tree):
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def python_code_lines(text):
    """Numbers (from 1) of the lines holding code once `#` comments and docstrings are removed."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING}
    code_lines = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in skip:
            code_lines.update(range(token.start[0], token.end[0] + 1))
    return code_lines - _docstring_lines(ast.parse(text))


def count_python(text):
    return len(python_code_lines(text))



def split_by_feature(text, python, role):
    """{(feature, bindings): lines of code} of one file, split at its twinop-feature lines; and
    the problems with those lines (an unknown feature, a binding that is not the file's)."""
    code = python_code_lines(text) if python else cpp_code_lines(text)
    comment = "#" if python else "//"
    parts, problems = collections.Counter(), []
    current = (role.feature, role.bindings)
    for number, line in enumerate(text.splitlines(), 1):
        marker = MARKER.match(line)
        if marker and line.lstrip().startswith(comment):
            feature = marker["feature"]
            bindings = tuple(b.strip() for b in marker["bindings"].split(",")) if marker["bindings"] else role.bindings
            if feature == "end":
                current = (role.feature, role.bindings)
            elif feature not in FEATURES or not set(bindings) <= set(role.bindings):
                problems.append(f"line {number}: {line.strip()}")
            else:
                current = (feature, bindings)
        elif number in code:
            parts[current] += 1
    return dict(parts), problems


def unlisted_files(source_dir):
    """Source files under the binding folders that ROLES does not name (relative paths)."""
    found = [f for f in BINDING_FILES if os.path.exists(os.path.join(source_dir, f))]
    for folder in BINDING_FOLDERS:
        for root, dirs, files in os.walk(os.path.join(source_dir, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            found += [os.path.relpath(os.path.join(root, f), source_dir) for f in files if f.endswith(SOURCE_SUFFIXES)]
    return sorted(f for f in found if f not in ROLES)


def feature_table(files, op):
    """{binding: {feature: {"lines": n} or {"status", "why"}}} of one op: the lines of its own files
    and of the files every op shares, and for every feature a binding spends none on, why."""
    lines = collections.defaultdict(collections.Counter)
    for f in files:
        if f["op"] in (op, None):
            for part in f["parts"]:
                for binding in part["bindings"]:
                    lines[binding][part["feature"]] += part["lines"]
    table = {}
    own = {binding for f in files if f["op"] == op for part in f["parts"] for binding in part["bindings"]}
    for binding in BINDINGS:
        if binding not in own:  # the op is not built for this binding: no column
            continue
        table[binding] = {}
        for feature in FEATURES:
            status, why = OP_WITHOUT_LINES.get((op, binding, feature), WITHOUT_LINES.get((binding, feature), (None, None)))
            if lines[binding][feature]:
                table[binding][feature] = {"lines": lines[binding][feature]}
            else:
                table[binding][feature] = {"status": status or "unaccounted for",
                                           "why": why or "no lines, and WITHOUT_LINES does not say why"}
    return table


def measure(source_dir):
    """Lines per file and per part, and per op the feature x binding table. None when the sources are absent."""
    if not source_dir or not os.path.isdir(os.path.join(source_dir, "csrc")):
        return {"available": False, "reason": f"sources not available (no csrc/ under {source_dir!r})"}
    files, missing, problems = [], [], {}
    for path, role in ROLES.items():
        full = os.path.join(source_dir, path)
        if not os.path.exists(full):
            missing.append(path)
            continue
        with open(full, encoding="utf-8") as f:
            parts, trouble = split_by_feature(f.read(), path.endswith(".py"), role)
        if trouble:
            problems[path] = trouble
        files.append({"path": path, "op": role.op, "bindings": list(role.bindings), "feature": role.feature,
                      "lines": sum(parts.values()),
                      "parts": [{"feature": feature, "bindings": list(bindings), "lines": n}
                                for (feature, bindings), n in parts.items()]})
    ops = sorted({f["op"] for f in files if f["op"] and CORE not in f["bindings"]})
    core = collections.Counter()
    for f in files:
        if CORE in f["bindings"]:
            core[f["feature"]] += f["lines"]
    return {
        "available": True,
        "source_dir": source_dir,
        "features": FEATURES,
        "files": files,
        "ops": {op: feature_table(files, op) for op in ops},
        "core": dict(core),
        "missing": missing,  # named in ROLES, not on disk (e.g. a file another change has not added yet)
        "unlisted": unlisted_files(source_dir),
        "marker_problems": problems,
    }


def totals(table, features=FEATURES):
    """{binding: lines} over `features` of one op's feature table."""
    return {binding: sum(cells[f].get("lines", 0) for f in features) for binding, cells in table.items()}
