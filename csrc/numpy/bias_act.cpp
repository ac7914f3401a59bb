// numpy's bias_act, bias_act_backward and bias_act_double_backward: the core's CPU kernels on the
// arrays, with the GIL released while they run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <tuple>
#include <utility>

#include "bias_act.h"
#include "bias_act_args.h"
#include "binding.h"
#include "thread_parallel_for.h"
#include "types.h"

namespace twinop::numpy_binding {
namespace {

Activation parse_act(const std::string& name) {
  Activation act{};
  throw_if_error("bias_act", parse_activation_arg(name, &act));
  return act;
}

py::array bias_act(const py::array& x_in, const py::array& bias_in, const std::string& act_name,
                   const py::object& out) {
  const TensorInfo x_info = describe(x_in);
  throw_if_error("bias_act", check_bias_act_args(x_info, describe(bias_in)));
  const Activation act = parse_act(act_name);
  const py::array x = contiguous(x_in), bias = contiguous(bias_in);
  py::array y = out.is_none()
                    ? empty_like(x)
                    : checked_out("bias_act", out, "out", x, "x", {{&x, "x"}, {&bias, "bias"}}, {"x"});
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
  throw_if_error("bias_act", check_bias_act_backward_args(describe(dy_in), x_info, describe(bias_in)));
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
    dx = checked_out("bias_act", out[py::int_(0)], "dx", x, "x", inputs, {"dy", "x"});
    dbias = checked_out("bias_act", out[py::int_(1)], "dbias", bias, "bias", inputs, {});
    throw_if_error("bias_act",
                   check_out_overlap("dbias", bytes_of(dbias), "dx", bytes_of(dx), /*may_be_same=*/false));
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
std::tuple<py::array, py::array, py::array> bias_act_double_backward(
    const py::array& g_in, const py::array& dy_in, const py::array& x_in, const py::array& bias_in,
    const std::string& act_name, const py::object& g_bias_in) {
  const py::array g_bias_or_zeros =
      g_bias_in.is_none() ? py::array(py::module_::import("numpy").attr("zeros_like")(bias_in)) : py::array(g_bias_in);
  const TensorInfo x_info = describe(x_in);
  throw_if_error("bias_act", check_bias_act_double_backward_args(describe(g_in), describe(g_bias_or_zeros),
                                                                describe(dy_in), x_info, describe(bias_in)));
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
}  // namespace

// twinop-feature: registration
void define_bias_act(py::module_& m) {
  m.def("bias_act", &bias_act, py::arg("x"), py::arg("bias"), py::arg("act") = "gelu", py::kw_only(),
        py::arg("out") = py::none(),
        "y = act(x + bias), bias broadcast along the last axis of x; out: an array to write y into (x itself is "
        "allowed).");
  m.def("bias_act_backward", &bias_act_backward, py::arg("dy"), py::arg("x"), py::arg("bias"),
        py::arg("act") = "gelu", py::kw_only(), py::arg("out") = py::none(),
        "(dx, dbias): dx = dy * act'(x + bias), dbias = dx summed over all axes but the last; out: a tuple (dx, "
        "dbias) of arrays to write them into (dx may be dy or x).");
  // twinop-feature: second-order
  m.def("bias_act_double_backward", &bias_act_double_backward, py::arg("g"), py::arg("dy"), py::arg("x"),
        py::arg("bias"), py::arg("act") = "gelu", py::kw_only(), py::arg("g_bias") = py::none(),
        "(d_dy, d_x, d_bias): the gradients of bias_act_backward's inputs, given g arriving at dx (and g_bias at "
        "dbias): d_dy = G * act'(v), d_x = G * dy * act''(v), d_bias = d_x summed over all axes but the last, "
        "with v = x + bias and G = g + g_bias.");
}

}  // namespace twinop::numpy_binding
