// The numpy binding (pybind11): maps numpy arrays and dtypes onto the core, and the core's
// argument errors onto TypeError / ValueError. bfloat16 arrays come from ml_dtypes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bias_act.h"
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

TensorInfo describe(const py::array& a) {
  const std::string name = py::str(a.dtype().attr("name"));
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

// A C-contiguous array of the same dtype: a no-op for contiguous input, a copy otherwise.
py::array contiguous(const py::array& a) { return py::array::ensure(a, py::array::c_style); }

py::array empty_like(const py::array& a) {
  return py::array(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

py::array bias_act(const py::array& x_in, const py::array& bias_in, const std::string& act_name) {
  const TensorInfo x_info = describe(x_in);
  throw_if_error(check_forward_args(x_info, describe(bias_in)));
  const Activation act = parse_act(act_name);
  const py::array x = contiguous(x_in), bias = contiguous(bias_in);
  py::array y = empty_like(x);
  const Matrix2D m = as_matrix(x_info.shape);
  {
    py::gil_scoped_release no_gil;  // the kernel touches no Python object
    bias_act_forward_cpu(x.data(), bias.data(), y.mutable_data(), m.rows, m.cols, *x_info.dtype, act);
  }
  return y;
}

std::tuple<py::array, py::array> bias_act_backward(const py::array& dy_in, const py::array& x_in,
                                                   const py::array& bias_in, const std::string& act_name) {
  const TensorInfo x_info = describe(x_in);
  throw_if_error(check_backward_args(describe(dy_in), x_info, describe(bias_in)));
  const Activation act = parse_act(act_name);
  const py::array dy = contiguous(dy_in), x = contiguous(x_in), bias = contiguous(bias_in);
  py::array dx = empty_like(x), dbias = empty_like(bias);
  const Matrix2D m = as_matrix(x_info.shape);
  {
    py::gil_scoped_release no_gil;
    bias_act_backward_cpu(dy.data(), x.data(), bias.data(), dx.mutable_data(), dbias.mutable_data(), m.rows,
                          m.cols, *x_info.dtype, act);
  }
  return {dx, dbias};
}

}  // namespace
}  // namespace twinop::numpy_binding

PYBIND11_MODULE(_twinop_numpy, m) {
  using namespace twinop;
  m.doc() = "twinop's numpy binding: y = act(x + bias) and its backward on the CPU.";
  m.def("bias_act", &numpy_binding::bias_act, py::arg("x"), py::arg("bias"), py::arg("act") = "gelu",
        "y = act(x + bias), bias broadcast along the last axis of x.");
  m.def("bias_act_backward", &numpy_binding::bias_act_backward, py::arg("dy"), py::arg("x"), py::arg("bias"),
        py::arg("act") = "gelu", "(dx, dbias): dx = dy * act'(x + bias), dbias = dx summed over all axes but the last.");
  py::tuple names(kNumActivations);
  for (int i = 0; i < kNumActivations; ++i) names[i] = py::str(std::string(kActivationNames[i]));
  m.attr("ACTIVATIONS") = names;
}
