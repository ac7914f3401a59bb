"""Axis 1, boilerplate: non-blank, non-comment lines of each binding, by role, counted from
the source files at report time, next to the size of the shared core they all wrap."""
import ast
import io
import os
import tokenize

CORE = "core"
INTEGRATION = "framework integration (module/layer/autocast)"
HIGHER_ORDER = "higher-order autodiff and batching rules"
DISTRIBUTED = "distributed (sharding rules)"
TORCH_STABLE = "torch-stable"  # the PyTorch op on the LibTorch stable ABI; its column reads "torch (stable ABI)"

# The one place that says which file does which job. A file under a binding folder that is
# missing here fails tests/test_report.py, so the counts stay true as files are added.
ROLES = {
    "csrc/torch/binding.h": ("torch", "kernel wrapper and dtype dispatch"),
    "csrc/torch/bias_act_ops.cpp": ("torch", "op/schema registration"),
    "csrc/torch/bias_act_op.h": ("torch", "kernel wrapper and dtype dispatch"),
    "csrc/torch/bias_act_cpu.cpp": ("torch", "kernel wrapper and dtype dispatch"),
    "csrc/torch/bias_act_cuda.cpp": ("torch", "kernel wrapper and dtype dispatch"),
    "csrc/torch/bias_act_autocast.cpp": ("torch", INTEGRATION),
    "csrc/torch/bias_act_out_autograd.cpp": ("torch", "gradient/autograd registration"),
    "python/twinop/torch/_autograd.py": ("torch", "gradient/autograd registration"),
    "python/twinop/torch/_second_order.py": ("torch", HIGHER_ORDER),
    "python/twinop/torch/_function.py": ("torch", HIGHER_ORDER),
    "python/twinop/torch/_no_derivative.py": ("torch", HIGHER_ORDER),
    "python/twinop/torch/_vmap.py": ("torch", HIGHER_ORDER),
    "python/twinop/torch/_bias_act.py": ("torch", "Python loader and API"),
    "python/twinop/torch/_fake.py": ("torch", "shape inference or fake kernel"),
    "python/twinop/torch/_library.py": ("torch", "Python loader and API"),
    "python/twinop/torch/__init__.py": ("torch", "Python loader and API"),
    "python/twinop/torch/module.py": ("torch", INTEGRATION),
    "python/twinop/torch/_sharding.py": ("torch", DISTRIBUTED),
    # The stable-ABI library shares the Python package above; its column counts its own C++ and
    # the Python that does what its C++ cannot (typed errors, autocast, the forward-mode guard).
    "csrc/torch_stable/binding.h": (TORCH_STABLE, "kernel wrapper and dtype dispatch"),
    "csrc/torch_stable/bias_act_ops.cpp": (TORCH_STABLE, "op/schema registration"),
    "csrc/torch_stable/bias_act_op.h": (TORCH_STABLE, "kernel wrapper and dtype dispatch"),
    "csrc/torch_stable/bias_act_cpu.cpp": (TORCH_STABLE, "kernel wrapper and dtype dispatch"),
    "csrc/torch_stable/bias_act_cuda.cpp": (TORCH_STABLE, "kernel wrapper and dtype dispatch"),
    "python/twinop/torch/_checks.py": (TORCH_STABLE, "Python loader and API"),
    "python/twinop/torch/_autocast.py": (TORCH_STABLE, INTEGRATION),
    "python/twinop/torch/_dual_check.py": (TORCH_STABLE, HIGHER_ORDER),
    "python/twinop/torch/_out_autograd.py": (TORCH_STABLE, "gradient/autograd registration"),
    "csrc/tensorflow/bias_act_ops.cc": ("tensorflow", "op/schema registration"),
    "csrc/tensorflow/bias_act_kernel.h": ("tensorflow", "kernel wrapper and dtype dispatch"),
    "csrc/tensorflow/bias_act_kernels.cc": ("tensorflow", "kernel wrapper and dtype dispatch"),
    "csrc/tensorflow/bias_act_kernels_gpu.cc": ("tensorflow", "kernel wrapper and dtype dispatch"),
    "csrc/tensorflow/bias_act_shapes.h": ("tensorflow", "shape inference or fake kernel"),
    "csrc/tensorflow/bias_act_shapes.cc": ("tensorflow", "shape inference or fake kernel"),
    "python/twinop/tf/_gradient.py": ("tensorflow", "gradient/autograd registration"),
    "python/twinop/tf/_second_order.py": ("tensorflow", HIGHER_ORDER),
    "csrc/tensorflow/third_order_kernel.cc": ("tensorflow", HIGHER_ORDER),
    "python/twinop/tf/_library.py": ("tensorflow", "Python loader and API"),
    "python/twinop/tf/_bias_act.py": ("tensorflow", "Python loader and API"),
    "python/twinop/tf/__init__.py": ("tensorflow", "Python loader and API"),
    "python/twinop/tf/layer.py": ("tensorflow", INTEGRATION),
    # JAX: XLA FFI handlers loaded with ctypes, registered as custom-call targets from Python.
    "csrc/jax/bias_act_targets.h": ("jax", "op/schema registration"),
    "python/twinop/jax/_ffi.py": ("jax", "op/schema registration"),
    "csrc/jax/bias_act_handler.h": ("jax", "kernel wrapper and dtype dispatch"),
    "csrc/jax/bias_act_cpu.cpp": ("jax", "kernel wrapper and dtype dispatch"),
    "csrc/jax/xla_parallel_for.h": ("jax", "kernel wrapper and dtype dispatch"),
    "csrc/jax/bias_act_cuda.cpp": ("jax", "kernel wrapper and dtype dispatch"),
    # JAX knows every shape at trace time: the bias_act_args.h rules asked there, as shape functions are.
    "csrc/jax/bias_act_check.cpp": ("jax", "shape inference or fake kernel"),
    "python/twinop/jax/_gradient.py": ("jax", "gradient/autograd registration"),
    "python/twinop/jax/_second_order.py": ("jax", HIGHER_ORDER),
    "python/twinop/jax/_vmap.py": ("jax", HIGHER_ORDER),
    "python/twinop/jax/_library.py": ("jax", "Python loader and API"),
    "python/twinop/jax/_bias_act.py": ("jax", "Python loader and API"),
    "python/twinop/jax/__init__.py": ("jax", "Python loader and API"),
    "python/twinop/jax/_sharding.py": ("jax", DISTRIBUTED),
    "python/twinop/jax/_auto_partitioning.py": ("jax", DISTRIBUTED),
    # pybind11 defines the module, converts and dispatches in one file, all of it wrapper; numpy lends no
    # thread pool, so the binding starts its own threads.
    "csrc/numpy/module.cpp": ("numpy", "kernel wrapper and dtype dispatch"),
    "csrc/numpy/binding.h": ("numpy", "kernel wrapper and dtype dispatch"),
    "csrc/numpy/bias_act.cpp": ("numpy", "kernel wrapper and dtype dispatch"),
    "csrc/numpy/thread_parallel_for.h": ("numpy", "kernel wrapper and dtype dispatch"),
    "python/twinop/numpy.py": ("numpy", "Python loader and API"),
    "python/twinop/_layouts.py": (CORE, DISTRIBUTED),  # the ops' layouts, read by torch's and JAX's rules
    "csrc/core/types.h": (CORE, "shared core (C++)"),
    "csrc/core/activation_math.h": (CORE, "shared core (C++)"),
    "csrc/core/bias_act.h": (CORE, "shared core (C++)"),
    "csrc/core/bias_act_cpu.cpp": (CORE, "shared core (C++)"),
    "csrc/core/dispatch.h": (CORE, "shared core (C++)"),
    "csrc/core/half_cpu.h": (CORE, "shared core (C++)"),
    "csrc/core/arg_checks.h": (CORE, "shared core (C++)"),
    "csrc/core/bias_act_args.h": (CORE, "shared core (C++)"),
    "csrc/core/compute_type.h": (CORE, "shared core (C++)"),
    "csrc/core/cpu_clones.h": (CORE, "shared core (C++)"),
    "csrc/core/cuda_stream.h": (CORE, "shared core (C++)"),
    "csrc/core/parallel_for.h": (CORE, "shared core (C++)"),
    "csrc/core/storage_dispatch.h": (CORE, "shared core (C++)"),
    "cuda/bias_act_cuda.h": (CORE, "shared core (CUDA)"),
    "cuda/bias_act_forward.cu": (CORE, "shared core (CUDA)"),
    "cuda/bias_act_backward.cu": (CORE, "shared core (CUDA)"),
    "cuda/bias_act_double_backward.cu": (CORE, "shared core (CUDA)"),
    "cuda/column_sums.cuh": (CORE, "shared core (CUDA)"),
    "cuda/compute_type.cuh": (CORE, "shared core (CUDA)"),
    "cuda/cuda_check.h": (CORE, "shared core (CUDA)"),
    "cuda/storage_dispatch.cuh": (CORE, "shared core (CUDA)"),
    "cuda/tile_launch.cuh": (CORE, "shared core (CUDA)"),
    "cuda/vector_io.cuh": (CORE, "shared core (CUDA)"),
}

# The second op's files, counted apart until the report measures each op (its own axis rows).
SECOND_OP = "rms_norm"
ROLES.update({
    "csrc/core/rms_norm.h": (SECOND_OP, "shared core (C++)"),
    "csrc/core/rms_norm_args.h": (SECOND_OP, "shared core (C++)"),
    "csrc/core/rms_norm_cpu.cpp": (SECOND_OP, "shared core (C++)"),
    "cuda/rms_norm_cuda.h": (SECOND_OP, "shared core (CUDA)"),
    "csrc/numpy/rms_norm.cpp": (SECOND_OP, "numpy"),
    "csrc/torch/rms_norm.cpp": (SECOND_OP, "torch"),
    "csrc/torch_stable/rms_norm.cpp": (SECOND_OP, TORCH_STABLE),
    "python/twinop/torch/_rms_norm.py": (SECOND_OP, "torch"),
    "python/twinop/torch/_rms_norm_ops.py": (SECOND_OP, "torch"),
})

# Where binding and core sources live: every source file under these must be in ROLES.
BINDING_FOLDERS = ("csrc/torch", "csrc/torch_stable", "csrc/tensorflow", "csrc/numpy", "csrc/jax", "csrc/core", "cuda",
                   "python/twinop/torch", "python/twinop/tf", "python/twinop/jax")
BINDING_FILES = ("python/twinop/numpy.py",)
SOURCE_SUFFIXES = (".h", ".hpp", ".cc", ".cpp", ".cu", ".cuh", ".py")


def count_cpp(text):
    """Lines holding code once `//` and `/* */` comments are removed (string literals kept)."""
    code_lines = set()
    line, i, n = 0, 0, len(text)
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
    return len(code_lines)


def _docstring_lines(tree):
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def count_python(text):
    """Lines holding code once `#` comments and docstrings are removed."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING}
    code_lines = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in skip:
            code_lines.update(range(token.start[0], token.end[0] + 1))
    return len(code_lines - _docstring_lines(ast.parse(text)))


def count_lines(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return count_python(text) if path.endswith(".py") else count_cpp(text)


def unlisted_files(source_dir):
    """Source files under the binding folders that ROLES does not name (relative paths)."""
    found = [f for f in BINDING_FILES if os.path.exists(os.path.join(source_dir, f))]
    for folder in BINDING_FOLDERS:
        for root, dirs, files in os.walk(os.path.join(source_dir, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            found += [os.path.relpath(os.path.join(root, f), source_dir) for f in files if f.endswith(SOURCE_SUFFIXES)]
    return sorted(f for f in found if f not in ROLES)


def measure(source_dir):
    """Lines per file, and totals per binding and role. None when the sources are absent."""
    if not source_dir or not os.path.isdir(os.path.join(source_dir, "csrc")):
        return {"available": False, "reason": f"sources not available (no csrc/ under {source_dir!r})"}
    files, missing = [], []
    for path, (binding, role) in ROLES.items():
        full = os.path.join(source_dir, path)
        if os.path.exists(full):
            files.append({"path": path, "binding": binding, "role": role, "lines": count_lines(full)})
        else:
            missing.append(path)
    by_role = {}
    for f in files:
        roles = by_role.setdefault(f["binding"], {})
        roles[f["role"]] = roles.get(f["role"], 0) + f["lines"]
    return {
        "available": True,
        "source_dir": source_dir,
        "files": files,
        "by_role": by_role,
        "totals": {binding: sum(roles.values()) for binding, roles in by_role.items()},
        "missing": missing,  # named in ROLES, not on disk (e.g. a file another change has not added yet)
        "unlisted": unlisted_files(source_dir),
    }
