// The argument rules of bias_act, its backward and its double backward (arg_checks.h says how
// bindings use them).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "arg_checks.h"
#include "types.h"

namespace twinop {

inline std::optional<ArgError> parse_activation_arg(std::string_view name, Activation* act) {
  if (parse_activation(name, act)) return std::nullopt;
  std::string known;
  for (auto n : kActivationNames) known += (known.empty() ? "" : ", ") + std::string(n);
  return ArgError{ArgError::Kind::kValue, "act must be one of " + known + "; got " + quoted(name)};
}

// Rules for bias_act(x, bias): x at least 1-D of a supported float dtype; bias 1-D of
// x.shape[-1] elements and of x's dtype.
inline std::optional<ArgError> check_bias_act_args(const TensorInfo& x, const TensorInfo& bias) {
  using K = ArgError::Kind;
  if (auto error = check_x_arg(x)) return error;
  if (bias.shape.size() != 1)
    return ArgError{K::kValue, "bias must be 1-D; got shape " + shape_string(bias.shape)};
  if (bias.shape[0] != x.shape.back())
    return ArgError{K::kValue, "bias must have x.shape[-1] = " + std::to_string(x.shape.back()) +
                                   " elements; got " + std::to_string(bias.shape[0])};
  if (bias.dtype != x.dtype)
    return ArgError{K::kType, "bias must have the dtype of x (" + x.dtype_name + "); got " + bias.dtype_name};
  return std::nullopt;
}

// Rules for bias_act_backward(dy, x, bias): the forward's rules, and dy shaped and typed like x.
inline std::optional<ArgError> check_bias_act_backward_args(const TensorInfo& dy, const TensorInfo& x,
                                                            const TensorInfo& bias) {
  if (auto error = check_bias_act_args(x, bias)) return error;
  return check_same_as("dy", dy, "x", x);
}

// Rules for bias_act_double_backward(g, g_bias, dy, x, bias): the backward's rules, g shaped and
// typed like x, g_bias like bias.
inline std::optional<ArgError> check_bias_act_double_backward_args(const TensorInfo& g, const TensorInfo& g_bias,
                                                                   const TensorInfo& dy, const TensorInfo& x,
                                                                   const TensorInfo& bias) {
  if (auto error = check_bias_act_backward_args(dy, x, bias)) return error;
  if (auto error = check_same_as("g", g, "x", x)) return error;
  return check_same_as("g_bias", g_bias, "bias", bias);
}

}  // namespace twinop
