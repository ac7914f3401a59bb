// The bias_act ops, written once for every device: check the arguments (bias_act_args.h, through
// binding.h), allocate outputs with PyTorch, and hand them to a device's `Kernels` (see
// bias_act_cpu.cpp and bias_act_cuda.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/core/DeviceGuard.h>

#include <string_view>
#include <tuple>
#include <utility>

#include "bias_act_args.h"
#include "binding.h"
#include "types.h"

namespace twinop::torch_binding {

constexpr const char* kBiasAct = "twinop.bias_act";

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
  throw_if_error(kBiasAct, parse_activation_arg(act, &parsed));
  return parsed;
}

inline ForwardArgs forward_args(const at::Tensor& x, const at::Tensor& bias, std::string_view act) {
  throw_if_error(kBiasAct, check_bias_act_args(describe(x), describe(bias)));
  check_tensors(kBiasAct, {{&x, "x"}, {&bias, "bias"}});
  return {x.contiguous(), bias.contiguous(), as_matrix(x.sizes().vec()), *core_dtype(x.scalar_type()),
          parse_act(act)};
}

inline BackwardArgs backward_args(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& bias,
                                  std::string_view act) {
  throw_if_error(kBiasAct, check_bias_act_backward_args(describe(dy), describe(x), describe(bias)));
  check_tensors(kBiasAct, {{&x, "x"}, {&bias, "bias"}, {&dy, "dy"}});
  return {dy.contiguous(), x.contiguous(), bias.contiguous(), as_matrix(x.sizes().vec()),
          *core_dtype(x.scalar_type()), parse_act(act)};
}

// twinop-feature: second-order
inline DoubleBackwardArgs double_backward_args(const at::Tensor& g, const at::Tensor& g_bias, const at::Tensor& dy,
                                              const at::Tensor& x, const at::Tensor& bias, std::string_view act) {
  throw_if_error(kBiasAct, check_bias_act_double_backward_args(describe(g), describe(g_bias), describe(dy),
                                                               describe(x), describe(bias)));
  check_tensors(kBiasAct, {{&x, "x"}, {&bias, "bias"}, {&dy, "dy"}, {&g, "g"}, {&g_bias, "g_bias"}});
  return {g.contiguous(), g_bias.contiguous(), dy.contiguous(), x.contiguous(), bias.contiguous(),
          as_matrix(x.sizes().vec()), *core_dtype(x.scalar_type()), parse_act(act)};
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
  check_out(kBiasAct, out, "out", args.x, "x", {{&args.x, "x"}, {&args.bias, "bias"}}, {"x"},
            Kernels::kRunsInPlace);
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
  check_out(kBiasAct, dx, "dx", args.x, "x", inputs, {"dy", "x"}, Kernels::kRunsInPlace);
  check_out(kBiasAct, dbias, "dbias", args.bias, "bias", inputs, {}, Kernels::kRunsInPlace);
  throw_if_error(kBiasAct,
                 check_out_overlap("dbias", bytes_of(dbias), "dx", bytes_of(dx), /*may_be_same=*/false));
  const c10::DeviceGuard guard(args.x.device());
  Kernels::backward(args, dx, dbias);
  return {dx, dbias};
}

// twinop-feature: end
}  // namespace twinop::torch_binding
