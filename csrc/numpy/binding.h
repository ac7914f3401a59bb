// What the numpy binding's ops share: numpy dtypes and arrays described for the core's argument
// rules (arg_checks.h), the rules' errors as TypeError / ValueError, the arrays the kernels read,
// and the checks of an out= array. bfloat16 arrays come from ml_dtypes.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arg_checks.h"
#include "types.h"

namespace twinop::numpy_binding {

namespace py = pybind11;

constexpr int kNpyHalf = 23;  // numpy's NPY_HALF, which pybind11 does not name

// numpy's name of a dtype. numpy computes dtype.name in Python on every access (2 us for
// float32, most of a small call's cost), so the builtin float types go by their type number.
inline std::string dtype_name(const py::dtype& dtype) {
  switch (dtype.num()) {
    case py::detail::npy_api::NPY_FLOAT_: return "float32";
    case py::detail::npy_api::NPY_DOUBLE_: return "float64";
    case kNpyHalf: return "float16";
    default: return py::str(dtype.attr("name"));  // ml_dtypes' bfloat16, and the types refused
  }
}

inline TensorInfo describe(const py::array& a) {
  const std::string name = dtype_name(a.dtype());
  // By dtype name, so ml_dtypes' bfloat16 needs no import here.
  return {std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim()), dtype_from_name(name), name};
}

// An argument error of `op`'s as numpy's own functions raise it: TypeError or ValueError.
inline void throw_if_error(const char* op, const std::optional<ArgError>& error) {
  if (!error) return;
  if (error->kind == ArgError::Kind::kType) throw py::type_error(std::string(op) + ": " + error->message);
  throw py::value_error(std::string(op) + ": " + error->message);
}

// numpy's NPY_ARRAY_ALIGNED (pybind11 names only c_style, f_style and forcecast).
constexpr int kAligned = py::detail::npy_api::NPY_ARRAY_ALIGNED_;

// An array the kernels can read as raw memory: C-contiguous, aligned and in the machine's byte
// order ('>f4' on x86 is a float32 whose bytes would read as other numbers). A no-op for such
// input, a copy otherwise.
inline py::array contiguous(const py::array& a) {
  const py::array native = a.dtype().attr("isnative").cast<bool>()
                               ? a
                               : py::array(a.attr("astype")(a.dtype().attr("newbyteorder")("=")));
  return py::array::ensure(native, py::array::c_style | kAligned);
}

inline py::array empty_like(const py::array& a) {
  return py::array(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

inline ByteRange bytes_of(const py::array& a) { return byte_range(a.data(), a.size(), a.itemsize()); }

// twinop-feature: out
// The caller's out= array, checked: a writeable, C-contiguous ndarray shaped and typed like
// `like`, sharing no memory with `inputs` (the contiguous arrays the kernel reads) unless it is
// one named in `may_be` (in place: the kernels read each element before they write it).
inline py::array checked_out(const char* op, const py::object& out, const char* name, const py::array& like,
                             const char* like_name,
                             std::initializer_list<std::pair<const py::array*, const char*>> inputs,
                             std::initializer_list<const char*> may_be) {
  const std::string prefix = std::string(op) + ": ";
  if (!py::isinstance<py::array>(out))
    throw py::type_error(prefix + name + " must be a numpy array; got " +
                         std::string(py::str(py::type::of(out).attr("__name__"))));
  py::array array = py::reinterpret_borrow<py::array>(out);
  throw_if_error(op, check_out_arg(name, describe(array), (array.flags() & py::array::c_style) != 0, like_name,
                                   describe(like)));
  if (!array.writeable()) throw py::value_error(prefix + name + " must be writeable");
  if (!array.dtype().attr("isnative").cast<bool>() || !(array.flags() & kAligned))
    throw py::value_error(prefix + name + " must be aligned and in the machine's byte order");
  for (const auto& [input, input_name] : inputs) {
    bool may_be_same = false;
    for (const char* allowed : may_be) may_be_same |= std::string_view(allowed) == input_name;
    throw_if_error(op, check_out_overlap(name, bytes_of(array), input_name, bytes_of(*input), may_be_same));
  }
  return array;
}

// twinop-feature: end
}  // namespace twinop::numpy_binding
