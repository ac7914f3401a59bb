// The bias_act ops on the LibTorch stable ABI, written once for every device: the job of
// csrc/torch/bias_act_binding.h (check the arguments (bias_act_args.h, through binding.h), allocate
// outputs with PyTorch and hand them to a device's `Kernels`, see bias_act_cpu.cpp and
// bias_act_cuda.cpp), through torch/csrc/stable/ alone; binding.h says where the stable API
// differs from the classic one.
#pragma once

#include <torch/csrc/stable/ops.h>

#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "bias_act_args.h"
#include "binding.h"
#include "types.h"

namespace twinop::torch_stable_binding {

constexpr const char* kBiasAct = "twinop.bias_act";

// Validated, contiguous inputs in the core's terms.
struct ForwardArgs {
  Tensor x, bias;
  Matrix2D matrix;
  DType dtype;
  Activation act;
};

struct BackwardArgs {
  Tensor dy, x, bias;
  Matrix2D matrix;
  DType dtype;
  Activation act;
};

// twinop-feature: second-order
struct DoubleBackwardArgs {
  Tensor g, g_bias, dy, x, bias;
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

inline ForwardArgs forward_args(const Tensor& x, const Tensor& bias, std::string_view act) {
  throw_if_error(kBiasAct, check_bias_act_args(describe(x), describe(bias)));
  check_tensors(kBiasAct, {{&x, "x"}, {&bias, "bias"}});
  return {as_contiguous(x), as_contiguous(bias), as_matrix(shape_of(x)), *core_dtype(x.scalar_type()),
          parse_act(act)};
}

inline BackwardArgs backward_args(const Tensor& dy, const Tensor& x, const Tensor& bias, std::string_view act) {
  throw_if_error(kBiasAct, check_bias_act_backward_args(describe(dy), describe(x), describe(bias)));
  check_tensors(kBiasAct, {{&x, "x"}, {&bias, "bias"}, {&dy, "dy"}});
  return {as_contiguous(dy), as_contiguous(x), as_contiguous(bias), as_matrix(shape_of(x)),
          *core_dtype(x.scalar_type()), parse_act(act)};
}

// twinop-feature: second-order
inline DoubleBackwardArgs double_backward_args(const Tensor& g, const Tensor& g_bias, const Tensor& dy,
                                              const Tensor& x, const Tensor& bias, std::string_view act) {
  throw_if_error(kBiasAct, check_bias_act_double_backward_args(describe(g), describe(g_bias), describe(dy),
                                                               describe(x), describe(bias)));
  check_tensors(kBiasAct, {{&x, "x"}, {&bias, "bias"}, {&dy, "dy"}, {&g, "g"}, {&g_bias, "g_bias"}});
  return {as_contiguous(g), as_contiguous(g_bias), as_contiguous(dy), as_contiguous(x), as_contiguous(bias),
          as_matrix(shape_of(x)), *core_dtype(x.scalar_type()), parse_act(act)};
}

// The kernels take the activation as a StringHandle (see take_string); TORCH_BOX boxes them.
// Unlike the classic templates, no device guard here: the stable DeviceGuard is the
// accelerator's, so the CUDA kernels take it (bias_act_cuda.cpp).
// twinop-feature: end
template <typename Kernels>
Tensor bias_act(const Tensor& x, const Tensor& bias, StringHandle act) {
  const std::string act_name = take_string(act);
  const ForwardArgs args = forward_args(x, bias, act_name);
  Tensor y = torch::stable::empty_like(args.x);
  Kernels::forward(args, y);
  return y;
}

template <typename Kernels>
std::tuple<Tensor, Tensor> bias_act_backward(const Tensor& dy, const Tensor& x, const Tensor& bias, StringHandle act) {
  const std::string act_name = take_string(act);
  const BackwardArgs args = backward_args(dy, x, bias, act_name);
  Tensor dx = torch::stable::empty_like(args.x);
  Tensor dbias = torch::stable::empty_like(args.bias);
  Kernels::backward(args, dx, dbias);
  return {dx, dbias};
}

// twinop-feature: second-order
template <typename Kernels>
std::tuple<Tensor, Tensor, Tensor> bias_act_double_backward(const Tensor& g, const Tensor& g_bias, const Tensor& dy,
                                                            const Tensor& x, const Tensor& bias, StringHandle act) {
  const std::string act_name = take_string(act);
  const DoubleBackwardArgs args = double_backward_args(g, g_bias, dy, x, bias, act_name);
  Tensor d_dy = torch::stable::empty_like(args.x);
  Tensor d_x = torch::stable::empty_like(args.x);
  Tensor d_bias = torch::stable::empty_like(args.bias);
  Kernels::double_backward(args, d_dy, d_x, d_bias);
  return {d_dy, d_x, d_bias};
}

// twinop-feature: out
// The out= forms: the same kernels, writing into the caller's tensors (returned, as the schema's
// Tensor(a!) says). Their autograd (an error if a gradient is asked for, version bumps) is in
// python/twinop/torch/_out_autograd.py: the stable API has no GradMode or version counter.
template <typename Kernels>
Tensor bias_act_out(const Tensor& x, const Tensor& bias, StringHandle act, Tensor out) {
  const std::string act_name = take_string(act);
  const ForwardArgs args = forward_args(x, bias, act_name);
  check_out(kBiasAct, out, "out", args.x, "x", {{&args.x, "x"}, {&args.bias, "bias"}}, {"x"},
            Kernels::kRunsInPlace);
  Kernels::forward(args, out);
  return out;
}

template <typename Kernels>
std::tuple<Tensor, Tensor> bias_act_backward_out(const Tensor& dy, const Tensor& x, const Tensor& bias,
                                                 StringHandle act, Tensor dx, Tensor dbias) {
  const std::string act_name = take_string(act);
  const BackwardArgs args = backward_args(dy, x, bias, act_name);
  const auto inputs = {std::pair{&args.dy, "dy"}, {&args.x, "x"}, {&args.bias, "bias"}};
  check_out(kBiasAct, dx, "dx", args.x, "x", inputs, {"dy", "x"}, Kernels::kRunsInPlace);
  check_out(kBiasAct, dbias, "dbias", args.bias, "bias", inputs, {}, Kernels::kRunsInPlace);
  throw_if_error(kBiasAct,
                 check_out_overlap("dbias", bytes_of(dbias), "dx", bytes_of(dx), /*may_be_same=*/false));
  Kernels::backward(args, dx, dbias);
  return {dx, dbias};
}

// twinop-feature: end
}  // namespace twinop::torch_stable_binding
