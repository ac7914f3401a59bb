"""One framework's runtime measurements for `twinop report`, in a process of its own:

    python -m twinop.report._runtime_worker [--op bias_act] --framework torch|tensorflow|numpy|jax --device cpu|cuda
        --mode quick|full|tiny [--thp | --head-to-head]

prints one JSON object on stdout ({"framework", "version", "machine", "rows", "copy", "overhead",
"skipped"}, the parts of runtime.measure's result) and progress lines on stderr.

Method. CPU: time.perf_counter around each call; torch and numpy CPU ops, and TensorFlow's eager
executor (synchronous unless a user turns that off), return only once the result exists, so nothing
is added to what a user pays. GPU: CUDA events around batches of calls queued behind a spin kernel,
so launch overhead stays out; the overhead table has it: the median of single calls from Python at
a tiny shape (on the GPU, up to a synchronize). Calls cycle over input sets that together exceed
twice the last-level cache. The first call at each shape is timed apart (compile_s = first call -
median, for compiled impls), and at the first shape of each dtype its result is checked against
twinop.reference in float64 before any timing: a wrong one stops the worker. The copy ceiling is a
copy into an existing, paged-in buffer. Each binding is timed twice: as a user calls it, allocating
its outputs (on Linux, PyTorch's CPU allocator and glibc give a block of 32 MiB or more back to the
OS when it is freed, so the next call pays page faults on fresh memory; an unfused op pays them for
each temporary), and writing into outputs allocated once and paged in ("-out" impls: PyTorch's and
numpy's out=), so the two differ by what the allocation costs. TensorFlow's allocator keeps its
memory (with its oneDNN options on, x86's default), and its kernels compute in an input's buffer
when nobody else holds it: there is no out= to time. --thp sets PyTorch's THP_MEM_ALLOC_ENABLE=1
(huge pages for large CPU allocations) before torch is imported, and times the allocating impls
under it ("-thp"). On the CPU, at the largest size, each row also counts the process's minor page
faults per call: what shows an allocator handing out fresh memory, whatever the framework (JAX's
CPU client has no out= either). twinop's TensorFlow op is also timed in a tf.function of CHAIN
calls, each on the one before's output, as a model's function holds many ops: its times are per
op. --head-to-head times only the framework's impls in runtime.HEAD_TO_HEAD, at the largest size
(a round of the speed verdict's comparison). --op picks the op (OPS, keyed by op: its reference
and its impls per framework): bias_act (y = gelu(x + b)) or rms_norm (y = x rstd w, eps EPS).
"""
import argparse
import collections
import importlib
import itertools
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np

from twinop import reference
from twinop.report import gpu_timer
from twinop.report.runtime import (CHAIN, DTYPES, ELEMENTS_MOVED, HEAD_TO_HEAD, IMPLS, ITEMSIZE, OVERHEAD_SHAPE,
                                   PROGRESS_PREFIX, SIZES)

ACT = "gelu"  # bias_act's activation
EPS = 1e-6  # rms_norm's epsilon
MAX_INPUT_SETS = 64  # below this many, the smallest shapes stay in cache: their cost is the call, not the data
PAGE_FAULT_CALLS = 3  # calls counted for the page faults per call, after the timing (a fault is paid once)

# Per row: as many calls as fit `seconds`, within [min_reps, max_reps] (CUDA: batches of calls).
# Overhead: the median of `overhead_calls` single calls (a median shrugs off a busy machine's stalls).
Settings = collections.namedtuple("Settings", "seconds min_reps max_reps overhead_calls")
SETTINGS = {
    "tiny": Settings(0.02, 3, 10, 20),
    "quick": Settings(0.25, 5, 40, 200),
    "full": Settings(1.0, 9, 200, 1000),
}
# rtol = atol: loose on purpose (tests/ holds the tight bounds): it catches a wrong function or a
# wrong dtype path, not rounding. A sum over R rows (dbias) gets sqrt(R) times more.
TOLERANCE = {"float64": 1e-6, "float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}

# fwd(x, b) -> y; fwd_bwd(x, b, dy) -> (y, dx, dbias), None where the impl has no such pass: y is
# returned, as a training step uses it, so that no graph compiler drops the forward (the gradients
# recompute from x and b). An impl
# `into` preallocated outputs takes them after its inputs: fwd(x, b, y), fwd_bwd(x, b, dy, y, dx, dbias).
# An impl of `chain` > 1 runs the op that many times, each on the one before's output (x, then y):
# its rows are per op, its results those of the last op (dx the gradient of the chain's input).
Impl = collections.namedtuple("Impl", "fwd fwd_bwd compiled into chain", defaults=(False, 1))
# The arguments of each pass, of the kit's copy, and of the passes into preallocated outputs.
Inputs = collections.namedtuple("Inputs", "fwd fwd_bwd copy into_fwd into_fwd_bwd")


class WrongResult(AssertionError):
    """An impl's result differs from the float64 reference: timing it would be worthless."""


class Unavailable(Exception):
    """The framework imports but cannot run on the requested device."""


def first_line(error):
    """What a user reads first; with the next line too where the first only announces it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    return f"{type(error).__name__}: {' '.join(lines[:2]) if lines[0].endswith(':') else lines[0]}"


def cpu_description():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def cpu_cache_bytes():
    """The largest CPU cache (the last level), from sysfs; 32 MiB where it cannot be read."""
    sizes = []
    for index in range(8):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size") as size:
                text = size.read().strip()
        except OSError:
            break
        sizes.append(int(text[:-1]) * {"K": 2**10, "M": 2**20}[text[-1]] if text[-1] in "KM" else int(text))
    return max(sizes, default=32 * 2**20)


class CpuTimer:
    """Seconds of calls from Python; CudaTimer adds device synchronization and event timing."""

    def sync(self):
        pass

    def once(self, call):
        """(seconds, result) of one call."""
        self.sync()
        start = time.perf_counter()
        result = call()
        self.sync()
        return time.perf_counter() - start, result

    def median(self, call, settings):
        """(median seconds per call, False); one call first sizes the repetitions. The second item
        is CudaTimer's: whether the host, not the device, set the pace."""
        estimate, _ = self.once(call)
        reps = min(max(round(settings.seconds / estimate), settings.min_reps), settings.max_reps)
        return statistics.median(self.once(call)[0] for _ in range(reps)), False


def batch_count(estimate, settings):
    """Batches of gpu_timer.CALLS_PER_BATCH calls that fill settings.seconds, for calls of `estimate` seconds."""
    return min(max(round(settings.seconds / (estimate * gpu_timer.CALLS_PER_BATCH)), settings.min_reps),
               settings.max_reps)


class CudaTimer(CpuTimer):
    """GPU seconds per call from CUDA events, over batches queued behind a spin kernel (gpu_timer)."""

    def __init__(self, torch):
        self.torch = torch

    def sync(self):
        self.torch.cuda.synchronize()

    def median(self, call, settings):
        """(median over batches of GPU seconds per call, host-bound); one call first sizes the batches."""
        estimate, _ = self.once(call)
        return gpu_timer.cuda_median(self.torch, call, batch_count(estimate, settings))


class TorchKit:
    framework = "torch"

    def __init__(self, device, thp=False):
        if thp:  # read once, when torch's CPU allocator first allocates
            os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise Unavailable(f"torch {torch.__version__} sees no CUDA device")
        self.torch, self.device, self.version = torch, device, torch.__version__
        self.dtypes = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                       "bfloat16": torch.bfloat16}
        if device == "cuda":
            self.machine = torch.cuda.get_device_name()
            self.cache_bytes = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20)
            self.timer = CudaTimer(torch)
        else:
            self.machine, self.cache_bytes, self.timer = cpu_description(), cpu_cache_bytes(), CpuTimer()
        # CPU: dynamic=True compiles once per dtype and pass (each C++ compile takes seconds on 2
        # cores; one per shape too would not fit quick mode). GPU: dynamic=False, as the baselines,
        # kernels specialized to each shape; the limit is raised so that none falls back to eager.
        torch._dynamo.config.recompile_limit = 256  # above shapes x dtypes x passes of any mode
        self.compile_dynamic = device == "cpu"

    @staticmethod
    def fwd_bwd(fn):
        def fwd_bwd(x, b, dy):
            x.grad = b.grad = None  # as zero_grad(set_to_none=True): no pass accumulating into .grad
            y = fn(x, b)
            y.backward(dy)
            return y, x.grad, b.grad

        return fwd_bwd

    def inputs(self, x, b, dy, dtype):
        # Copies in every dtype: PyTorch's own memory, as a PyTorch user's tensors are. A float32 view
        # of the numpy arrays would sit 16 bytes into a page and its outputs 64; the CPU then stalls
        # loads whose address matches a recent store's in its low 12 bits (4K aliasing): 4-22% slower here.
        x, b, dy = (self.torch.from_numpy(a).to(self.device, self.dtypes[dtype], copy=True) for a in (x, b, dy))
        leaves = (x.detach().requires_grad_(), b.detach().requires_grad_())  # same storage, grad-enabled
        outs = (x.clone(), x.clone(), b.clone())  # clones: outputs already paged in
        return Inputs(fwd=(x, b), fwd_bwd=(*leaves, dy), copy=(x.clone(), x), into_fwd=(x, b, outs[0]),
                      into_fwd_bwd=(x, b, dy, *outs))

    @staticmethod
    def copy(out, x):
        return out.copy_(x)

    def as_float64(self, tensor):
        return tensor.detach().to("cpu", self.torch.float64).numpy()


class TensorFlowKit:
    framework = "tensorflow"

    def __init__(self, device):
        import tensorflow as tf

        if device != "cpu":
            raise Unavailable("timed on the CPU only")
        if not tf.config.experimental.get_synchronous_execution():
            raise Unavailable("eager execution is asynchronous here: a call's time would not include its work")
        tf.get_logger().setLevel("ERROR")  # a retracing warning per new shape is expected here
        self.tf, self.version = tf, tf.__version__
        self.machine, self.cache_bytes, self.timer = cpu_description(), cpu_cache_bytes(), CpuTimer()

    def function(self, fn, **options):
        return self.tf.function(fn, autograph=False, **options)  # no Python control flow to convert

    def fwd_bwd(self, fn):
        def fwd_bwd(x, b, dy):
            with self.tf.GradientTape() as tape:
                tape.watch([x, b])
                y = fn(x, b)
            return (y, *tape.gradient(y, [x, b], output_gradients=dy))

        return fwd_bwd

    def inputs(self, x, b, dy, dtype):
        x, b, dy = (self.tf.cast(self.tf.constant(a), dtype) for a in (x, b, dy))
        # TF has no copy into an existing tensor, and DeepCopy's fresh output of 32 MiB or more costs
        # page faults on every call (glibc gives such blocks back to the OS): the ceiling is a
        # memcpy of x's bytes, in this process.
        source = x.numpy()
        return Inputs(fwd=(x, b), fwd_bwd=(x, b, dy), copy=(source.copy(), source), into_fwd=None, into_fwd_bwd=None)

    @staticmethod
    def copy(out, x):
        np.copyto(out, x)

    @staticmethod
    def as_float64(tensor):
        return np.asarray(tensor.numpy(), np.float64)


class NumpyKit:
    framework = "numpy"

    def __init__(self, device):
        if device != "cpu":
            raise Unavailable("numpy runs on the CPU only")
        self.version = np.__version__
        self.machine, self.cache_bytes, self.timer = cpu_description(), cpu_cache_bytes(), CpuTimer()

    @staticmethod
    def inputs(x, b, dy, dtype):
        if dtype == "bfloat16":
            import ml_dtypes  # numpy has no bfloat16 of its own

            dtype = ml_dtypes.bfloat16
        x, b, dy = (a.astype(dtype) for a in (x, b, dy))
        outs = (x.copy(), x.copy(), b.copy())  # copies: outputs already paged in
        return Inputs(fwd=(x, b), fwd_bwd=(x, b, dy), copy=(x.copy(), x), into_fwd=(x, b, outs[0]),
                      into_fwd_bwd=(x, b, dy, *outs))

    @staticmethod
    def copy(out, x):
        np.copyto(out, x)

    @staticmethod
    def as_float64(array):
        return np.asarray(array, np.float64)


class JaxTimer(CpuTimer):
    """JAX dispatches asynchronously on every backend: a call's time ends when its result is
    ready. On the GPU, the median is over batches of back-to-back calls (gpu_timer.wall_median):
    Python's dispatch overlaps the kernels, as in a training loop, except at sizes where the
    dispatch takes longer than the kernel (JAX offers no events to time the GPU alone)."""

    def __init__(self, jax, batches):
        self.jax, self.batches = jax, batches

    def once(self, call):
        start = time.perf_counter()
        result = self.jax.block_until_ready(call())
        return time.perf_counter() - start, result

    def median(self, call, settings):
        """(median seconds per call, False): see the class docstring."""
        if not self.batches:
            return super().median(call, settings)
        estimate, _ = self.once(call)
        return gpu_timer.wall_median(call, self.jax.block_until_ready, batch_count(estimate, settings)), False


class JaxKit:
    framework = "jax"

    def __init__(self, device):
        import jax

        jax.config.update("jax_enable_x64", True)  # for float64 (full mode); every array's dtype is explicit
        try:
            self.device = jax.devices("gpu" if device == "cuda" else "cpu")[0]
        except RuntimeError as error:  # no such backend in this jax install
            raise Unavailable(f"jax {jax.__version__} sees no {device} device") from error
        self.jax, self.version, self.on_gpu = jax, jax.__version__, device == "cuda"
        if self.on_gpu:
            self.machine, self.cache_bytes = self.device.device_kind, 50 * 2**20  # JAX does not say the L2's size
        else:
            self.machine, self.cache_bytes = cpu_description(), cpu_cache_bytes()
        self.timer = JaxTimer(jax, batches=self.on_gpu)
        self._device_copy = jax.jit(lambda x: x.copy())

    def fwd_bwd(self, fn):
        def fwd_bwd(x, b, dy):
            y, vjp = self.jax.vjp(fn, x, b)
            return (y, *vjp(dy))

        return fwd_bwd

    def inputs(self, x, b, dy, dtype):
        x, b, dy = (self.jax.device_put(self.jax.numpy.asarray(a).astype(dtype), self.device) for a in (x, b, dy))
        # JAX arrays are immutable: on the CPU the ceiling is a memcpy of x's bytes (as for TF), on
        # the GPU a compiled copy into a fresh buffer from XLA's caching allocator.
        source = x if self.on_gpu else np.asarray(x)
        return Inputs(fwd=(x, b), fwd_bwd=(x, b, dy), copy=(None if self.on_gpu else source.copy(), source),
                      into_fwd=None, into_fwd_bwd=None)

    def copy(self, out, x):
        return self._device_copy(x) if self.on_gpu else np.copyto(out, x)

    @staticmethod
    def as_float64(array):
        return np.asarray(array, np.float64)


KITS = {"torch": TorchKit, "tensorflow": TensorFlowKit, "numpy": NumpyKit, "jax": JaxKit}


# Each op's impls, per framework: a function of the framework's kit returning ({impl: Impl},
# [skipped impls with the reason]): twinop's binding (as called and, where the framework has
# one, into out=) and the framework's own composition of the op. runtime.IMPLS names the roles.
def twinop_bias_act(binding):
    """bias_act(x, b) of one of twinop's binding modules ("twinop.torch", ...) with the report's
    activation; ImportError where that binding was not built."""
    module = importlib.import_module(binding)
    return lambda x, b: module.bias_act(x, b, ACT)


def twinop_rms_norm(binding):
    """rms_norm(x, w) of one of twinop's binding modules with the report's eps; ImportError where
    that binding was not built."""
    module = importlib.import_module(binding)
    return lambda x, w: module.rms_norm(x, w, EPS)


def torch_impls(kit, twinop_op, composition):
    """twinop's op through twinop.torch (twinop_op: twinop_bias_act or twinop_rms_norm), and the
    framework's composition eager and under torch.compile."""
    impls, skipped = {}, []
    try:
        ours = twinop_op("twinop.torch")
    except ImportError as error:
        skipped.append({"impl": "twinop-torch", "reason": first_line(error)})
    else:
        impls["twinop-torch"] = Impl(ours, kit.fwd_bwd(ours), False)
    compiled = kit.torch.compile(composition, dynamic=kit.compile_dynamic)
    impls["torch-eager"] = Impl(composition, kit.fwd_bwd(composition), False)
    impls["torch-compile"] = Impl(compiled, kit.fwd_bwd(compiled), True)
    return impls, skipped


def torch_bias_act(kit):
    torch = kit.torch

    def gelu_bias(x, b):
        return torch.nn.functional.gelu(x + b)

    impls, skipped = torch_impls(kit, twinop_bias_act, gelu_bias)
    if "twinop-torch" in impls:  # the op and its backward into the caller's buffers
        import twinop.torch

        def into(x, b, y):
            return twinop.torch.bias_act(x, b, ACT, out=y)

        def into_fwd_bwd(x, b, dy, y, dx, dbias):
            into(x, b, y)
            torch.ops.twinop.bias_act_backward.out(dy, x, b, ACT, dx=dx, dbias=dbias)
            return y, dx, dbias

        impls["twinop-torch-out"] = Impl(into, into_fwd_bwd, False, into=True)
    return impls, skipped


def torch_rms_norm(kit):
    def rms_norm(x, w):
        return kit.torch.nn.functional.rms_norm(x, x.shape[-1:], w, EPS)

    return torch_impls(kit, twinop_rms_norm, rms_norm)  # no out=: twinop's rows are as called


def chained(fn, times=CHAIN):
    """fn applied `times` times, each call on the one before's output."""
    def chain(x, b):
        for _ in range(times):
            x = fn(x, b)
        return x

    return chain


def tensorflow_impls(kit, twinop_op, composition):
    """twinop's op through twinop.tf eagerly, in a tf.function, and CHAIN times in one; and the
    framework's composition eagerly, in a tf.function and with XLA."""
    function, impls, skipped = kit.function, {}, []
    try:
        ours = twinop_op("twinop.tf")
    except ImportError as error:
        skipped += [{"impl": impl, "reason": first_line(error)}
                    for impl in ("twinop-tf-eager", "twinop-tf-function", "twinop-tf-chain")]
    else:
        impls["twinop-tf-eager"] = Impl(ours, kit.fwd_bwd(ours), False)
        impls["twinop-tf-function"] = Impl(function(ours), function(kit.fwd_bwd(ours)), True)
        # A model's function holds many ops, which share the fixed cost of one function call.
        impls["twinop-tf-chain"] = Impl(function(chained(ours)), function(kit.fwd_bwd(chained(ours))), True,
                                        chain=CHAIN)
    impls["tf-eager"] = Impl(composition, kit.fwd_bwd(composition), False)
    impls["tf-function"] = Impl(function(composition), function(kit.fwd_bwd(composition)), True)
    impls["tf-xla"] = Impl(function(composition, jit_compile=True),
                           function(kit.fwd_bwd(composition), jit_compile=True), True)
    return impls, skipped


def tensorflow_bias_act(kit):
    return tensorflow_impls(kit, twinop_bias_act, lambda x, b: kit.tf.nn.gelu(x + b, approximate=False))


def tensorflow_rms_norm(kit):
    tf = kit.tf

    def rms_norm(x, w):
        return x * tf.math.rsqrt(tf.reduce_mean(x * x, -1, keepdims=True) + EPS) * w

    def keras_rms_norm(x, w):  # keras.layers.RMSNormalization's call, with w as its scale
        import keras

        return keras.ops.rms_normalization(x, scale=w, axis=-1, epsilon=EPS)

    impls, skipped = tensorflow_impls(kit, twinop_rms_norm, rms_norm)
    impls["keras-rmsnorm"] = Impl(kit.function(keras_rms_norm), kit.function(kit.fwd_bwd(keras_rms_norm)), True)
    return impls, skipped


def numpy_bias_act(kit):
    try:
        import twinop.numpy
    except ImportError as error:
        return {}, [{"impl": "twinop-numpy", "reason": first_line(error)}]

    def fwd(x, b):
        return twinop.numpy.bias_act(x, b, ACT)

    def fwd_bwd(x, b, dy):
        return (twinop.numpy.bias_act(x, b, ACT), *twinop.numpy.bias_act_backward(dy, x, b, ACT))

    def into(x, b, y):
        return twinop.numpy.bias_act(x, b, ACT, out=y)

    def into_fwd_bwd(x, b, dy, y, dx, dbias):
        return (into(x, b, y), *twinop.numpy.bias_act_backward(dy, x, b, ACT, out=(dx, dbias)))

    impls = {"twinop-numpy": Impl(fwd, fwd_bwd, False), "twinop-numpy-out": Impl(into, into_fwd_bwd, False, into=True)}
    return impls, []


def numpy_rms_norm(kit):
    try:
        import twinop.numpy
    except ImportError as error:
        return {}, [{"impl": "twinop-numpy", "reason": first_line(error)}]

    def fwd(x, w):
        return twinop.numpy.rms_norm(x, w, EPS)

    def fwd_bwd(x, w, dy):
        return (fwd(x, w), *twinop.numpy.rms_norm_backward(dy, x, w, EPS))

    def into(x, w, y):
        return twinop.numpy.rms_norm(x, w, EPS, out=y)

    # rms_norm_backward has no out=: the preallocated impl times the forward alone.
    impls = {"twinop-numpy": Impl(fwd, fwd_bwd, False), "twinop-numpy-out": Impl(into, None, False, into=True)}
    return impls, []


def jax_impls(kit, twinop_op, composition):
    """twinop's op through twinop.jax eagerly and under jax.jit, and jax.jit of the composition:
    XLA's own fusion, the peer a JAX user would otherwise have."""
    jax, impls, skipped = kit.jax, {}, []
    try:
        ours = twinop_op("twinop.jax")
    except ImportError as error:
        skipped += [{"impl": impl, "reason": first_line(error)} for impl in ("twinop-jax-eager", "twinop-jax-jit")]
    else:
        impls["twinop-jax-eager"] = Impl(ours, kit.fwd_bwd(ours), False)
        impls["twinop-jax-jit"] = Impl(jax.jit(ours), jax.jit(kit.fwd_bwd(ours)), True)
    impls["jax-jit"] = Impl(jax.jit(composition), jax.jit(kit.fwd_bwd(composition)), True)
    return impls, skipped


def jax_bias_act(kit):
    return jax_impls(kit, twinop_bias_act, lambda x, b: kit.jax.nn.gelu(x + b, approximate=False))


def jax_rms_norm(kit):
    jax = kit.jax
    return jax_impls(kit, twinop_rms_norm,
                     lambda x, w: x * jax.lax.rsqrt(jax.numpy.mean(x * x, -1, keepdims=True) + EPS) * w)


# Per op: its float64 reference, forward(x, b) -> y and backward(dy, x, b) -> (dx, db), on the
# inputs input_sets draws (x and dy of a shape, b of its last axis: bias_act's bias, rms_norm's
# weight), and its impls per framework.
Op = collections.namedtuple("Op", "forward backward impls")
OPS = {"bias_act": Op(lambda x, b: reference.bias_act(x, b, ACT),
                      lambda dy, x, b: reference.bias_act_backward(dy, x, b, ACT),
                      {"torch": torch_bias_act, "tensorflow": tensorflow_bias_act, "numpy": numpy_bias_act,
                       "jax": jax_bias_act}),
       "rms_norm": Op(lambda x, w: reference.rms_norm(x, w, EPS)[0],
                      lambda dy, x, w: reference.rms_norm_backward(dy, x, w, EPS),
                      {"torch": torch_rms_norm, "tensorflow": tensorflow_rms_norm, "numpy": numpy_rms_norm,
                       "jax": jax_rms_norm})}


def input_sets(kit, shape, dtype, seed):
    """Enough input sets (x, b, dy) that cycling over them outruns the cache."""
    set_bytes = 2 * math.prod(shape) * ITEMSIZE[dtype]  # x and dy, what each call reads
    count = max(1, min(MAX_INPUT_SETS, math.ceil(2 * kit.cache_bytes / set_bytes)))
    rng = np.random.default_rng(seed)
    draw = [(rng.standard_normal(shape, np.float32), rng.standard_normal(shape[-1:], np.float32),
             rng.standard_normal(shape, np.float32)) for _ in range(count)]
    return [kit.inputs(*arrays, dtype) for arrays in draw]


def rotating(fn, arg_sets):
    """A call of fn on the next argument set, cycling."""
    cycle = itertools.cycle(arg_sets)
    return lambda: fn(*next(cycle))


def chained_reference(op, x, b, dy, times):
    """(y, dx, db) of `times` ops chained (each on the one before's output) in float64; dx and db
    None where dy is."""
    layer_inputs, y = [], x
    for _ in range(times):
        layer_inputs.append(y)
        y = op.forward(y, b)
    if dy is None:
        return y, None, None
    dx, db = dy, 0.0
    for layer_input in reversed(layer_inputs):
        dx, d = op.backward(dx, layer_input, b)
        db = db + d
    return y, dx, db


def check(kit, op, impl, dtype, passes, args, got, chain=1):
    """Raises WrongResult unless `got` matches op's float64 reference on args within TOLERANCE (one
    more TOLERANCE per op of a chain, whose intermediate results are rounded to dtype)."""
    x, b = kit.as_float64(args[0]), kit.as_float64(args[1])
    dy = kit.as_float64(args[2]) if passes == "fwd+bwd" else None
    y, dx, db = chained_reference(op, x, b, dy, chain)
    pairs = [("y", got if passes == "fwd" else got[0], y, 1)]
    if passes == "fwd+bwd":
        pairs += [("dx", got[1], dx, 1), ("dbias", got[2], db, x.shape[0] * chain)]
    for name, actual, expected, summed in pairs:
        tol = TOLERANCE[dtype] * math.sqrt(summed) * chain
        error = np.abs(kit.as_float64(actual) - expected)
        if not np.all(error <= tol * (1 + np.abs(expected))):
            raise WrongResult(f"{impl} {dtype} {passes}: {name} differs from the float64 reference by up to "
                              f"{error.max():.3g} (tolerance {tol:.3g}, relative and absolute)")


def page_faults_per_call(timer, call):
    """Minor page faults per call, every thread of the process counted: a call whose outputs are
    fresh memory faults in each of their 4 KiB pages, one that reuses memory next to none."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(PAGE_FAULT_CALLS):
        timer.once(call)
    return round((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / PAGE_FAULT_CALLS)


def gbps(passes, shape, dtype, seconds):
    return ELEMENTS_MOVED[passes] * math.prod(shape) * ITEMSIZE[dtype] / seconds / 1e9


def sweep(kit, op, device, mode, progress, largest_only=False):
    """(rows, copy rows, skipped) of kit.impls of `op` (a key of OPS) over every dtype and shape of
    the mode (its largest shape alone if largest_only: results are checked at the first shape, and
    page faults counted at the largest, so neither there). A chain's times (and page faults) are per op."""
    settings, rows, copies, skipped = SETTINGS[mode], [], [], []
    shapes = list(enumerate(SIZES[(device, mode)]))
    for dtype in DTYPES[mode]:
        impls = dict(kit.impls)  # an impl that fails on this dtype leaves it for its remaining shapes
        for index, shape in shapes[-1:] if largest_only else shapes:
            label = f"{kit.framework} {dtype} {shape[0]}x{shape[1]}"
            try:
                sets = input_sets(kit, shape, dtype, seed=index)
            except Exception as error:  # e.g. no bfloat16 without ml_dtypes
                skipped += [{"impl": impl, "reason": f"{dtype}: {first_line(error)}"} for impl in impls]
                break
            progress(f"{label} copy")
            copy_s, host_bound = kit.timer.median(rotating(kit.copy, [s.copy for s in sets]), settings)
            copy_gbps = gbps("copy", shape, dtype, copy_s)
            copies.append({"framework": kit.framework, "dtype": dtype, "shape": list(shape),
                           "median_ms": copy_s * 1e3, "GBps": copy_gbps, **({"host_bound": True} if host_bound else {})})
            for impl, (fwd, fwd_bwd, compiled, into, chain) in list(impls.items()):
                for passes, fn, arg_sets in (("fwd", fwd, [s.into_fwd if into else s.fwd for s in sets]),
                                             ("fwd+bwd", fwd_bwd, [s.into_fwd_bwd if into else s.fwd_bwd for s in sets])):
                    if fn is None:  # a pass the impl does not have (an out= of the forward alone)
                        continue
                    progress(f"{label} {impl} {passes}")
                    try:
                        first_s, result = kit.timer.once(lambda: fn(*arg_sets[0]))
                        if index == 0:
                            check(kit, OPS[op], impl, dtype, passes, arg_sets[0], result, chain)
                        median_s, host_bound = kit.timer.median(rotating(fn, arg_sets), settings)
                        median_s /= chain
                    except WrongResult:
                        raise
                    except Exception as error:  # this impl cannot run this dtype (or shape)
                        skipped.append({"impl": impl, "reason": f"{dtype} {passes} at {shape[0]}x{shape[1]}: "
                                                                f"{first_line(error)}"})
                        del impls[impl]
                        break
                    row = {"op": op, "impl": impl, "framework": kit.framework, "dtype": dtype, "shape": list(shape),
                           "pass": passes, "median_ms": median_s * 1e3, "GBps": gbps(passes, shape, dtype, median_s)}
                    row["copy_fraction"] = row["GBps"] / copy_gbps
                    if chain > 1:
                        row["chain"] = chain
                    if host_bound:
                        row["host_bound"] = True
                    if compiled:
                        row["compile_s"] = max(0.0, first_s - median_s * chain)
                    if device == "cpu" and shape == shapes[-1][1] and not largest_only:  # the allocation finding's
                        row["page_faults"] = round(page_faults_per_call(kit.timer, rotating(fn, arg_sets)) / chain)
                    rows.append(row)
            del sets
    return rows, copies, skipped


def overhead(kit, ran, mode, progress):
    """Microseconds per call (per op, for a chain) from Python at OVERHEAD_SHAPE in float32, for
    each (impl, pass) in `ran`."""
    settings, out = SETTINGS[mode], []
    args = input_sets(kit, OVERHEAD_SHAPE, "float32", seed=0)[0]
    for impl, (fwd, fwd_bwd, _, into, chain) in kit.impls.items():
        for passes, fn, fn_args in (("fwd", fwd, args.into_fwd if into else args.fwd),
                                    ("fwd+bwd", fwd_bwd, args.into_fwd_bwd if into else args.fwd_bwd)):
            if fn is None or (impl, passes) not in ran:
                continue
            progress(f"{kit.framework} overhead {impl} {passes}")
            call = lambda: fn(*fn_args)  # noqa: E731  (same inputs every call: the cost measured is the call's)
            call()
            seconds = statistics.median(kit.timer.once(call)[0] for _ in range(settings.overhead_calls)) / chain
            out.append({"impl": impl, "dtype": "float32", "shape": list(OVERHEAD_SHAPE), "pass": passes,
                        "median_us": seconds * 1e6})
    return out


def measure(framework, device, mode, progress, thp=False, head_to_head=False, op="bias_act"):
    """This worker's part of runtime.measure's result for `op`, with the framework's "version"."""
    result = {"framework": framework, "version": None, "machine": None, "rows": [], "copy": [], "overhead": [],
              "skipped": []}
    try:
        kit = KITS[framework](device, thp=True) if thp else KITS[framework](device)
    except (ImportError, Unavailable) as error:  # the whole framework is out
        result["machine"] = cpu_description() if device == "cpu" else "unknown GPU"
        result["skipped"].append({"impl": framework, "reason": first_line(error)})
        return result
    kit.impls, kit.skipped = OPS[op].impls[framework](kit)
    if thp:  # the allocating calls, under huge pages
        kit.impls = {f"{impl}-thp": fns for impl, fns in kit.impls.items() if f"{impl}-thp" in IMPLS}
    if head_to_head:
        kit.impls = {impl: fns for impl, fns in kit.impls.items() if impl in HEAD_TO_HEAD[op][framework]}
    rows, copies, skipped = sweep(kit, op, device, mode, progress, largest_only=head_to_head)
    ran = {(row["impl"], row["pass"]) for row in rows  # none at the largest size alone
           if row["dtype"] == "float32" and tuple(row["shape"]) == OVERHEAD_SHAPE}
    result.update(version=kit.version, machine=kit.machine, rows=rows, copy=copies,
                  overhead=overhead(kit, ran, mode, progress), skipped=kit.skipped + skipped)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", choices=sorted(OPS), default="bias_act")
    parser.add_argument("--framework", choices=sorted(KITS), required=True)
    parser.add_argument("--device", choices=("cpu", "cuda"), required=True)
    parser.add_argument("--mode", choices=sorted(DTYPES), required=True)
    parser.add_argument("--thp", action="store_true", help="torch only: time its allocating impls under THP_MEM_ALLOC_ENABLE=1")
    parser.add_argument("--head-to-head", action="store_true", help="time only the framework's impls in runtime.HEAD_TO_HEAD, "
                                                                    "at the largest size")
    args = parser.parse_args()
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever a framework prints goes to stderr: stdout carries the JSON alone

    def progress(line):
        print(PROGRESS_PREFIX + line, file=sys.stderr, flush=True)

    json.dump(measure(args.framework, args.device, args.mode, progress, thp=args.thp, head_to_head=args.head_to_head,
                      op=args.op), json_out)
    json_out.close()
    os._exit(0)  # skips interpreter teardown: after a torch.compile it takes seconds and saves nothing we need


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
