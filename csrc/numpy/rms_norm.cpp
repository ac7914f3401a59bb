// numpy's rms_norm, rms_norm_backward and add_rms_norm: the core's CPU kernels on the arrays,
// with the GIL released while they run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <tuple>
#include <vector>

#include "binding.h"
#include "rms_norm.h"
#include "rms_norm_args.h"
#include "thread_parallel_for.h"
#include "types.h"

namespace twinop::numpy_binding {
namespace {

constexpr const char* kOp = "rms_norm";

py::array rms_norm(const py::array& x_in, const py::array& weight_in, double eps, double offset,
                   const py::object& out) {
  const TensorInfo x_info = describe(x_in), weight_info = describe(weight_in);
  throw_if_error(kOp, check_rms_norm_args(x_info, weight_info, eps, offset));
  const py::array x = contiguous(x_in), weight = contiguous(weight_in);
  py::array y = out.is_none() ? empty_like(x)
                              : checked_out(kOp, out, "out", x, "x", {{&x, "x"}, {&weight, "weight"}}, {"x"});
  const Matrix2D m = as_matrix(x_info.shape);
  {
    py::gil_scoped_release no_gil;  // the kernel touches no Python object
    rms_norm_forward_cpu(x.data(), weight.data(), y.mutable_data(), /*rstd=*/nullptr, m.rows, m.cols,
                         *x_info.dtype, *weight_info.dtype, eps, offset, run_on_threads);
  }
  return y;
}

std::tuple<py::array, py::array> add_rms_norm(const py::array& x_in, const py::array& residual_in,
                                              const py::array& weight_in, double eps, double offset) {
  const TensorInfo x_info = describe(x_in), weight_info = describe(weight_in);
  throw_if_error(kOp, check_add_rms_norm_args(x_info, describe(residual_in), weight_info, eps, offset));
  const py::array x = contiguous(x_in), residual = contiguous(residual_in), weight = contiguous(weight_in);
  py::array y = empty_like(x), s = empty_like(x);
  const Matrix2D m = as_matrix(x_info.shape);
  std::vector<double> rstd(static_cast<std::size_t>(m.rows));  // room for either compute type
  {
    py::gil_scoped_release no_gil;
    add_rms_norm_forward_cpu(x.data(), residual.data(), weight.data(), y.mutable_data(), s.mutable_data(),
                             rstd.data(), m.rows, m.cols, *x_info.dtype, *weight_info.dtype, eps, offset,
                             run_on_threads);
  }
  return {y, s};
}

// rstd is not an argument here (numpy callers keep no state between calls): the backward
// computes it from x and eps first, one more read of x.
std::tuple<py::array, py::array> rms_norm_backward(const py::array& dy_in, const py::array& x_in,
                                                   const py::array& weight_in, double eps, double offset) {
  const TensorInfo x_info = describe(x_in), weight_info = describe(weight_in);
  throw_if_error(kOp, check_rms_norm_args(x_info, weight_info, eps, offset));
  throw_if_error(kOp, check_same_as("dy", describe(dy_in), "x", x_info));
  const py::array dy = contiguous(dy_in), x = contiguous(x_in), weight = contiguous(weight_in);
  py::array dx = empty_like(x), dweight = empty_like(weight);
  const Matrix2D m = as_matrix(x_info.shape);
  std::vector<double> rstd(static_cast<std::size_t>(m.rows));  // room for either compute type
  {
    py::gil_scoped_release no_gil;
    rms_norm_rstd_cpu(x.data(), rstd.data(), m.rows, m.cols, *x_info.dtype, eps, run_on_threads);
    rms_norm_backward_cpu(dy.data(), x.data(), rstd.data(), weight.data(), dx.mutable_data(), dweight.mutable_data(),
                          m.rows, m.cols, *x_info.dtype, *weight_info.dtype, offset, run_on_threads);
  }
  return {dx, dweight};
}

}  // namespace

// twinop-feature: registration
void define_rms_norm(py::module_& m) {
  m.def("rms_norm", &rms_norm, py::arg("x"), py::arg("weight"), py::arg("eps") = 1e-6, py::kw_only(),
        py::arg("offset") = 0.0, py::arg("out") = py::none(),
        "y = x / sqrt(mean(x**2 over the last axis) + eps) * (weight + offset); weight of x's dtype, or float32 "
        "for float16 and bfloat16 x; out: an array to write y into (x itself is allowed).");
  m.def("rms_norm_backward", &rms_norm_backward, py::arg("dy"), py::arg("x"), py::arg("weight"),
        py::arg("eps") = 1e-6, py::kw_only(), py::arg("offset") = 0.0,
        "(dx, dweight): the gradients of rms_norm's x and weight, given dy arriving at y; dweight is summed over "
        "all axes but the last, in an order fixed by the shape.");
  m.def("add_rms_norm", &add_rms_norm, py::arg("x"), py::arg("residual"), py::arg("weight"), py::arg("eps") = 1e-6,
        py::kw_only(), py::arg("offset") = 0.0,
        "(y, s): s = x + residual (rounded to x's dtype), y = rms_norm(s, weight, eps, offset=offset), in one pass.");
}

}  // namespace twinop::numpy_binding
