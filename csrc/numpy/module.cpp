// The numpy binding (pybind11): maps numpy arrays and dtypes onto the core, and the core's
// argument errors onto TypeError / ValueError. bfloat16 arrays come from ml_dtypes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "bias_act.h"
#include "thread_parallel_for.h"
#include "types.h"
#include "validate.h"

namespace py = pybind11;

namespace twinop::numpy_binding {
namespace {

// By dtype name, so ml_dtypes' bfloat16 needs no import here.
std::optional<DType> core_dtype(const std::string& name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float64") return DType::kFloat64;
  if (name == "float16") return DType::kFloat16;
  if (name == "bfloat16") return DType::kBFloat16;
  return std::nullopt;
}

constexpr int kNpyHalf = 23;  // numpy's NPY_HALF, which pybind11 does not name

// numpy's name of a dtype. numpy computes dtype.name in Python on every access (2 us for
// float32, most of a small call's cost), so the builtin float types go by their type number.
std::string dtype_name(const py::dtype& dtype) {
  switch (dtype.num()) {
    case py::detail::npy_api::NPY_FLOAT_: return "float32";
    case py::detail::npy_api::NPY_DOUBLE_: return "float64";
    case kNpyHalf: return "float16";
    default: return py::str(dtype.attr("name"));  // ml_dtypes' bfloat16, and the types refused
  }
}

TensorInfo describe(const py::array& a) {
  const std::string name = dtype_name(a.dtype());
  return {std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim()), core_dtype(name), name};
}

void throw_if_error(const std::optional<ArgError>& error) {
  if (!error) return;
  if (error->kind == ArgError::Kind::kType) throw py::type_error("bias_act: " + error->message);
  throw py::value_error("bias_act: " + error->message);
}

Activation parse_act(const std::string& name) {
  Activation act{};
  throw_if_error(parse_activation_arg(name, &act));
  return act;
}

// numpy's NPY_ARRAY_ALIGNED (pybind11 names only c_style, f_style and forcecast).
constexpr int kAligned = py::detail::npy_api::NPY_ARRAY_ALIGNED_;

// An array the kernels can read as raw memory: C-contiguous, aligned and in the machine's byte
// order ('>f4' on x86 is a float32 whose bytes would read as other numbers). A no-op for such
// input, a copy otherwise.
py::array contiguous(const py::array& a) {
  const py::array native = a.dtype().attr("isnative").cast<bool>()
                               ? a
                               : py::array(a.attr("astype")(a.dtype().attr("newbyteorder")("=")));
  return py::array::ensure(native, py::array::c_style | kAligned);
}

py::array empty_like(const py::array& a) {
  return py::array(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

ByteRange bytes_of(const py::array& a) { return byte_range(a.data(), a.size(), a.itemsize()); }

// twinop-feature: out
// The caller's out= array, checked: a writeable, C-contiguous ndarray shaped and typed like
// `like`, sharing no memory with `inputs` (the contiguous arrays the kernel reads) unless it is
// one named in `may_be` (in place: the kernels read each element before they write it).
py::array checked_out(const py::object& out, const char* name, const py::array& like, const char* like_name,
                      std::initializer_list<std::pair<const py::array*, const char*>> inputs,
                      std::initializer_list<const char*> may_be) {
  if (!py::isinstance<py::array>(out))
    throw py::type_error(std::string("bias_act: ") + name + " must be a numpy array; got " +
                         std::string(py::str(py::type::of(out).attr("__name__"))));
  py::array array = py::reinterpret_borrow<py::array>(out);
  throw_if_error(check_out_arg(name, describe(array), (array.flags() & py::array::c_style) != 0, like_name,
                               describe(like)));
  if (!array.writeable()) throw py::value_error(std::string("bias_act: ") + name + " must be writeable");
  if (!array.dtype().attr("isnative").cast<bool>() || !(array.flags() & kAligned))
    throw py::value_error(std::string("bias_act: ") + name + " must be aligned and in the machine's byte order");
  for (const auto& [input, input_name] : inputs) {
    bool may_be_same = false;
    for (const char* allowed : may_be) may_be_same |= std::string_view(allowed) == input_name;
    throw_if_error(check_out_overlap(name, bytes_of(array), input_name, bytes_of(*input), may_be_same));
  }
  return array;
}

// twinop-feature: end
py::array bias_act(const py::array& x_in, const py::array& bias_in, const std::string& act_name,
                   const py::object& out) {
  const TensorInfo x_info = describe(x_in);
  throw_if_error(check_forward_args(x_info, describe(bias_in)));
  const Activation act = parse_act(act_name);
  const py::array x = contiguous(x_in), bias = contiguous(bias_in);
  py::array y = out.is_none() ? empty_like(x) : checked_out(out, "out", x, "x", {{&x, "x"}, {&bias, "bias"}}, {"x"});
  const Matrix2D m = as_matrix(x_info.shape);
  {
    py::gil_scoped_release no_gil;  // the kernel touches no Python object
    bias_act_forward_cpu(x.data(), bias.data(), y.mutable_data(), m.rows, m.cols, *x_info.dtype, act,
                         run_on_threads);
  }
  return y;
}

// out=None, or (dx, dbias) as a numpy ufunc with two outputs takes it.
std::tuple<py::array, py::array> bias_act_backward(const py::array& dy_in, const py::array& x_in,
                                                   const py::array& bias_in, const std::string& act_name,
                                                   const py::object& out) {
  const TensorInfo x_info = describe(x_in);
  throw_if_error(check_backward_args(describe(dy_in), x_info, describe(bias_in)));
  const Activation act = parse_act(act_name);
  const py::array dy = contiguous(dy_in), x = contiguous(x_in), bias = contiguous(bias_in);
  py::array dx, dbias;
  if (out.is_none()) {
    dx = empty_like(x);
    dbias = empty_like(bias);
  } else {
    if (!py::isinstance<py::tuple>(out) || py::len(out) != 2)
      throw py::type_error("bias_act_backward: out must be a tuple (dx, dbias) of numpy arrays");
    const auto inputs = {std::pair{&dy, "dy"}, {&x, "x"}, {&bias, "bias"}};
    dx = checked_out(out[py::int_(0)], "dx", x, "x", inputs, {"dy", "x"});
    dbias = checked_out(out[py::int_(1)], "dbias", bias, "bias", inputs, {});
    throw_if_error(check_out_overlap("dbias", bytes_of(dbias), "dx", bytes_of(dx), /*may_be_same=*/false));
  }
  const Matrix2D m = as_matrix(x_info.shape);
  {
    py::gil_scoped_release no_gil;
    bias_act_backward_cpu(dy.data(), x.data(), bias.data(), dx.mutable_data(), dbias.mutable_data(), m.rows,
                          m.cols, *x_info.dtype, act, run_on_threads);
  }
  return {dx, dbias};
}

// twinop-feature: second-order
// g_bias=None: no gradient arrives at dbias, the same as zeros.
std::tuple<py::array, py::array, py::array> bias_act_double_backward(const py::array& g_in, const py::array& dy_in,
                                                                     const py::array& x_in, const py::array& bias_in,
                                                                     const std::string& act_name,
                                                                     const py::object& g_bias_in) {
  const py::array g_bias_or_zeros = g_bias_in.is_none() ? py::array(py::module_::import("numpy").attr("zeros_like")(bias_in))
                                                        : py::array(g_bias_in);
  const TensorInfo x_info = describe(x_in);
  throw_if_error(check_double_backward_args(describe(g_in), describe(g_bias_or_zeros), describe(dy_in), x_info,
                                            describe(bias_in)));
  const Activation act = parse_act(act_name);
  const py::array g = contiguous(g_in), g_bias = contiguous(g_bias_or_zeros), dy = contiguous(dy_in),
                  x = contiguous(x_in), bias = contiguous(bias_in);
  py::array d_dy = empty_like(x), d_x = empty_like(x), d_bias = empty_like(bias);
  const Matrix2D m = as_matrix(x_info.shape);
  {
    py::gil_scoped_release no_gil;
    bias_act_double_backward_cpu(g.data(), g_bias.data(), dy.data(), x.data(), bias.data(), d_dy.mutable_data(),
                                 d_x.mutable_data(), d_bias.mutable_data(), m.rows, m.cols, *x_info.dtype, act,
                                 run_on_threads);
  }
  return {d_dy, d_x, d_bias};
}

// twinop-feature: end
void set_num_threads(int threads) {
  if (threads < 1) throw py::value_error("set_num_threads: threads must be at least 1; got " + std::to_string(threads));
  thread_count() = threads;
}

}  // namespace
}  // namespace twinop::numpy_binding

// twinop-feature: registration
PYBIND11_MODULE(_twinop_numpy, m) {
  using namespace twinop;
  m.doc() = "twinop's numpy binding: y = act(x + bias), its backward and double backward on the CPU.";
  m.def("bias_act", &numpy_binding::bias_act, py::arg("x"), py::arg("bias"), py::arg("act") = "gelu",
        py::kw_only(), py::arg("out") = py::none(),
        "y = act(x + bias), bias broadcast along the last axis of x; out: an array to write y into (x itself is "
        "allowed).");
  m.def("bias_act_backward", &numpy_binding::bias_act_backward, py::arg("dy"), py::arg("x"), py::arg("bias"),
        py::arg("act") = "gelu", py::kw_only(), py::arg("out") = py::none(),
        "(dx, dbias): dx = dy * act'(x + bias), dbias = dx summed over all axes but the last; out: a tuple (dx, "
        "dbias) of arrays to write them into (dx may be dy or x).");
  // twinop-feature: second-order
  m.def("bias_act_double_backward", &numpy_binding::bias_act_double_backward, py::arg("g"), py::arg("dy"),
        py::arg("x"), py::arg("bias"), py::arg("act") = "gelu", py::kw_only(), py::arg("g_bias") = py::none(),
        "(d_dy, d_x, d_bias): the gradients of bias_act_backward's inputs, given g arriving at dx (and g_bias at "
        "dbias): d_dy = G * act'(v), d_x = G * dy * act''(v), d_bias = d_x summed over all axes but the last, "
        "with v = x + bias and G = g + g_bias.");
  // twinop-feature: registration
  m.def("set_num_threads", &numpy_binding::set_num_threads, py::arg("threads"),
        "Threads each call may use, the calling thread included (as torch.set_num_threads); the results are "
        "bit-identical for any count.");
  m.def("get_num_threads", [] { return numpy_binding::thread_count().load(); },
        "Threads each call may use, the calling thread included (set_num_threads).");
  py::tuple names(kNumActivations);
  for (int i = 0; i < kNumActivations; ++i) names[i] = py::str(std::string(kActivationNames[i]));
  m.attr("ACTIVATIONS") = names;
}
