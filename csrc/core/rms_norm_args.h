// The argument rules of RMSNorm, its fused residual add and their backward (arg_checks.h says how
// bindings use them).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "arg_checks.h"
#include "types.h"

namespace twinop {

// The dtype of the per-row rstd: the compute type, float64 for float64 inputs, else float32.
inline DType rstd_dtype(DType x_dtype) { return x_dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32; }

// Rules for rms_norm(x, weight, eps, offset): x at least 1-D of a supported float dtype; weight
// 1-D of x.shape[-1] elements, of x's dtype (or float32 for float16 and bfloat16 x); eps finite and
// >= 0; offset finite. x_name: what the op calls x (the backward of add_rms_norm takes its s).
inline std::optional<ArgError> check_rms_norm_args(const TensorInfo& x, const TensorInfo& weight, double eps,
                                                   double offset, const std::string& x_name = "x") {
  using K = ArgError::Kind;
  if (auto error = check_x_arg(x, x_name)) return error;
  if (weight.shape.size() != 1)
    return ArgError{K::kValue, "weight must be 1-D; got shape " + shape_string(weight.shape)};
  if (weight.shape[0] != x.shape.back())
    return ArgError{K::kValue, "weight must have " + x_name + ".shape[-1] = " + std::to_string(x.shape.back()) +
                                   " elements; got " + std::to_string(weight.shape[0])};
  const bool half_x = x.dtype == DType::kFloat16 || x.dtype == DType::kBFloat16;
  if (weight.dtype != x.dtype && !(half_x && weight.dtype == DType::kFloat32))
    return ArgError{K::kType, "weight must have the dtype of " + x_name + " (" + x.dtype_name + ")" +
                                  (half_x ? " or float32" : "") + "; got " + weight.dtype_name};
  if (auto error = check_float_attr("eps", eps, /*non_negative=*/true)) return error;
  return check_float_attr("offset", offset, /*non_negative=*/false);
}

// Rules for add_rms_norm(x, residual, weight, eps, offset): rms_norm's, and residual like x.
inline std::optional<ArgError> check_add_rms_norm_args(const TensorInfo& x, const TensorInfo& residual,
                                                       const TensorInfo& weight, double eps, double offset) {
  if (auto error = check_rms_norm_args(x, weight, eps, offset)) return error;
  return check_same_as("residual", residual, "x", x);
}

// rstd, as the forward returns it: x.shape[:-1], in the compute type.
inline std::optional<ArgError> check_rstd_arg(const TensorInfo& rstd, const TensorInfo& x, const std::string& x_name) {
  const std::vector<std::int64_t> rows(x.shape.begin(), x.shape.end() - 1);
  const std::string want = rstd_dtype(*x.dtype) == DType::kFloat64 ? "float64" : "float32";
  if (rstd.dtype != rstd_dtype(*x.dtype))
    return ArgError{ArgError::Kind::kType,
                    "rstd must be " + want + " for " + x_name + " of " + x.dtype_name + "; got " + rstd.dtype_name};
  if (rstd.shape != rows)
    return ArgError{ArgError::Kind::kValue, "rstd must have the shape " + x_name + ".shape[:-1] = " +
                                                shape_string(rows) + "; got " + shape_string(rstd.shape)};
  return std::nullopt;
}

// Rules for rms_norm_backward(dy, x, rstd, weight, offset): the forward's (eps aside), dy like x,
// rstd as the forward returns it.
inline std::optional<ArgError> check_rms_norm_backward_args(const TensorInfo& dy, const TensorInfo& x,
                                                            const TensorInfo& rstd, const TensorInfo& weight,
                                                            double offset) {
  if (auto error = check_rms_norm_args(x, weight, /*eps=*/0.0, offset)) return error;
  if (auto error = check_same_as("dy", dy, "x", x)) return error;
  return check_rstd_arg(rstd, x, "x");
}

// Rules for add_rms_norm_backward(dy, ds, s, rstd, weight, offset): rms_norm_backward's at s, and
// ds like s.
inline std::optional<ArgError> check_add_rms_norm_backward_args(const TensorInfo& dy, const TensorInfo& ds,
                                                                const TensorInfo& s, const TensorInfo& rstd,
                                                                const TensorInfo& weight, double offset) {
  if (auto error = check_rms_norm_args(s, weight, /*eps=*/0.0, offset, "s")) return error;
  if (auto error = check_same_as("dy", dy, "s", s)) return error;
  if (auto error = check_same_as("ds", ds, "s", s)) return error;
  return check_rstd_arg(rstd, s, "s");
}

}  // namespace twinop
