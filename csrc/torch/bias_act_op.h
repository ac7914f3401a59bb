// The PyTorch ops, written once for every device: map PyTorch tensors, dtypes and strings
// onto the core's types, the core's argument errors onto PyTorch's exceptions (TypeError /
// ValueError from TORCH_CHECK_TYPE / _VALUE), allocate outputs with PyTorch, and hand
// them to a device's `Kernels` (see bias_act_cpu.cpp and bias_act_cuda.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/core/DeviceGuard.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "types.h"
#include "validate.h"

namespace twinop::torch_binding {

inline std::optional<DType> core_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return DType::kFloat32;
    case at::kDouble: return DType::kFloat64;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    default: return std::nullopt;
  }
}

inline TensorInfo describe(const at::Tensor& t) {
  return {t.sizes().vec(), core_dtype(t.scalar_type()), std::string(c10::toString(t.scalar_type()))};
}

inline void throw_if_error(const std::optional<ArgError>& error) {
  if (!error) return;
  if (error->kind == ArgError::Kind::kType) TORCH_CHECK_TYPE(false, "twinop.bias_act: ", error->message);
  TORCH_CHECK_VALUE(false, "twinop.bias_act: ", error->message);
}

inline void check_same_device(const at::Tensor& x, const at::Tensor& other, const char* name) {
  TORCH_CHECK(other.device() == x.device(), "twinop.bias_act: ", name,
              " must be on the device of x (", x.device(), "); got ", other.device());
}

// twinop-feature: forward-mode
// The ops' autograd (torch.library.register_autograd) has no forward-mode derivative: PyTorch
// would return an output without a tangent, a silent zero. twinop.torch.bias_act, an
// autograd.Function with a jvp, never passes a dual tensor down to the kernels.
inline void check_not_dual(const at::Tensor& t, const char* name) {
  TORCH_CHECK(!t._fw_grad(/*level=*/0).defined(), "twinop.bias_act: ", name,
              " carries a forward-mode tangent, which the raw ops torch.ops.twinop.* drop; ",
              "call twinop.torch.bias_act for forward-mode AD");
}

// twinop-feature: end
// Validated, contiguous inputs in the core's terms.
struct ForwardArgs {
  at::Tensor x, bias;
  Matrix2D matrix;
  DType dtype;
  Activation act;
};

struct BackwardArgs {
  at::Tensor dy, x, bias;
  Matrix2D matrix;
  DType dtype;
  Activation act;
};

// twinop-feature: second-order
struct DoubleBackwardArgs {
  at::Tensor g, g_bias, dy, x, bias;
  Matrix2D matrix;
  DType dtype;
  Activation act;
};

// twinop-feature: end
inline Activation parse_act(std::string_view act) {
  Activation parsed{};
  throw_if_error(parse_activation_arg(act, &parsed));
  return parsed;
}

inline ForwardArgs forward_args(const at::Tensor& x, const at::Tensor& bias, std::string_view act) {
  throw_if_error(check_forward_args(describe(x), describe(bias)));
  check_same_device(x, bias, "bias");
  check_not_dual(x, "x");
  check_not_dual(bias, "bias");
  return {x.contiguous(), bias.contiguous(), as_matrix(x.sizes().vec()), *core_dtype(x.scalar_type()),
          parse_act(act)};
}

inline BackwardArgs backward_args(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& bias,
                                  std::string_view act) {
  throw_if_error(check_backward_args(describe(dy), describe(x), describe(bias)));
  check_same_device(x, bias, "bias");
  check_same_device(x, dy, "dy");
  for (const auto& [t, name] : {std::pair{&dy, "dy"}, {&x, "x"}, {&bias, "bias"}}) check_not_dual(*t, name);
  return {dy.contiguous(), x.contiguous(), bias.contiguous(), as_matrix(x.sizes().vec()),
          *core_dtype(x.scalar_type()), parse_act(act)};
}

// twinop-feature: second-order
inline DoubleBackwardArgs double_backward_args(const at::Tensor& g, const at::Tensor& g_bias, const at::Tensor& dy,
                                              const at::Tensor& x, const at::Tensor& bias, std::string_view act) {
  throw_if_error(check_double_backward_args(describe(g), describe(g_bias), describe(dy), describe(x), describe(bias)));
  check_same_device(x, bias, "bias");
  check_same_device(x, dy, "dy");
  check_same_device(x, g, "g");
  check_same_device(x, g_bias, "g_bias");
  for (const auto& [t, name] : {std::pair{&g, "g"}, {&g_bias, "g_bias"}, {&dy, "dy"}, {&x, "x"}, {&bias, "bias"}})
    check_not_dual(*t, name);
  return {g.contiguous(), g_bias.contiguous(), dy.contiguous(), x.contiguous(), bias.contiguous(),
          as_matrix(x.sizes().vec()), *core_dtype(x.scalar_type()), parse_act(act)};
}

// twinop-feature: out
inline ByteRange bytes_of(const at::Tensor& t) { return byte_range(t.const_data_ptr(), t.numel(), t.element_size()); }

// An out= tensor: like `like` (dtype, shape, device), contiguous, and sharing memory with none of
// `inputs` (the contiguous tensors the kernel reads) unless it is one of `may_be` and the
// kernels run in place.
inline void check_out(const at::Tensor& out, const char* name, const at::Tensor& like, const char* like_name,
                      std::initializer_list<std::pair<const at::Tensor*, const char*>> inputs,
                      std::initializer_list<const char*> may_be, bool runs_in_place) {
  TensorInfo out_info = describe(out);
  throw_if_error(check_out_arg(name, out_info, out.is_contiguous(), like_name, describe(like)));
  check_same_device(like, out, name);
  check_not_dual(out, name);
  for (const auto& [input, input_name] : inputs) {
    bool may_be_same = false;
    for (const char* allowed : may_be) may_be_same |= std::string_view(allowed) == input_name;
    throw_if_error(check_out_overlap(name, bytes_of(out), input_name, bytes_of(*input), may_be_same && runs_in_place));
  }
}

// twinop-feature: end
template <typename Kernels>
at::Tensor bias_act(const at::Tensor& x, const at::Tensor& bias, c10::string_view act) {
  const ForwardArgs args = forward_args(x, bias, act);
  const c10::DeviceGuard guard(args.x.device());
  at::Tensor y = at::empty_like(args.x);
  Kernels::forward(args, y);
  return y;
}

template <typename Kernels>
std::tuple<at::Tensor, at::Tensor> bias_act_backward(const at::Tensor& dy, const at::Tensor& x,
                                                     const at::Tensor& bias, c10::string_view act) {
  const BackwardArgs args = backward_args(dy, x, bias, act);
  const c10::DeviceGuard guard(args.x.device());
  at::Tensor dx = at::empty_like(args.x);
  at::Tensor dbias = at::empty_like(args.bias);
  Kernels::backward(args, dx, dbias);
  return {dx, dbias};
}

// twinop-feature: second-order
template <typename Kernels>
std::tuple<at::Tensor, at::Tensor, at::Tensor> bias_act_double_backward(const at::Tensor& g, const at::Tensor& g_bias,
                                                                        const at::Tensor& dy, const at::Tensor& x,
                                                                        const at::Tensor& bias, c10::string_view act) {
  const DoubleBackwardArgs args = double_backward_args(g, g_bias, dy, x, bias, act);
  const c10::DeviceGuard guard(args.x.device());
  at::Tensor d_dy = at::empty_like(args.x);
  at::Tensor d_x = at::empty_like(args.x);
  at::Tensor d_bias = at::empty_like(args.bias);
  Kernels::double_backward(args, d_dy, d_x, d_bias);
  return {d_dy, d_x, d_bias};
}

// twinop-feature: out
// The out= forms: the same kernels, writing into the caller's tensors.
template <typename Kernels>
at::Tensor& bias_act_out(const at::Tensor& x, const at::Tensor& bias, c10::string_view act, at::Tensor& out) {
  const ForwardArgs args = forward_args(x, bias, act);
  check_out(out, "out", args.x, "x", {{&args.x, "x"}, {&args.bias, "bias"}}, {"x"}, Kernels::kRunsInPlace);
  const c10::DeviceGuard guard(args.x.device());
  Kernels::forward(args, out);
  return out;
}

template <typename Kernels>
std::tuple<at::Tensor&, at::Tensor&> bias_act_backward_out(const at::Tensor& dy, const at::Tensor& x,
                                                           const at::Tensor& bias, c10::string_view act,
                                                           at::Tensor& dx, at::Tensor& dbias) {
  const BackwardArgs args = backward_args(dy, x, bias, act);
  const auto inputs = {std::pair{&args.dy, "dy"}, {&args.x, "x"}, {&args.bias, "bias"}};
  check_out(dx, "dx", args.x, "x", inputs, {"dy", "x"}, Kernels::kRunsInPlace);
  check_out(dbias, "dbias", args.bias, "bias", inputs, {}, Kernels::kRunsInPlace);
  throw_if_error(check_out_overlap("dbias", bytes_of(dbias), "dx", bytes_of(dx), /*may_be_same=*/false));
  const c10::DeviceGuard guard(args.x.device());
  Kernels::backward(args, dx, dbias);
  return {dx, dbias};
}

// twinop-feature: end
}  // namespace twinop::torch_binding
