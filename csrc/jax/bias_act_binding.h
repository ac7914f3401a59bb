// bias_act's XLA FFI handlers, written once for every platform: check XLA's buffers and the `act`
// attribute against the op's rules (through binding.h) and hand raw pointers to a platform's
// `Kernels` (see bias_act_cpu.cpp and bias_act_cuda.cpp).
// XLA allocates the outputs, dense and row-major, shaped as the caller of jax.ffi.ffi_call asked
// (python/twinop/jax/_ffi.py): they are checked like the inputs.
#pragma once

#include <optional>
#include <string_view>

#include "bias_act_args.h"
#include "binding.h"

namespace twinop::jax_binding {

constexpr const char* kBiasAct = "twinop.bias_act";

template <typename Kernels>
ffi::Error bias_act(Kernels kernels, std::string_view act_name, ffi::AnyBuffer x, ffi::AnyBuffer bias,
                    ffi::Result<ffi::AnyBuffer> y) {
  const TensorInfo x_info = describe(x);
  Activation act{};
  std::optional<ArgError> error = check_bias_act_args(x_info, describe(bias));
  if (!error) error = parse_activation_arg(act_name, &act);
  if (!error) error = check_same_as("y", describe(*y), "x", x_info);
  if (error) return to_error(kBiasAct, *error);
  const Matrix2D m = as_matrix(x_info.shape);
  return guarded([&] {
    return kernels.forward(x.untyped_data(), bias.untyped_data(), y->untyped_data(), m.rows, m.cols, *x_info.dtype,
                           act);
  });
}

template <typename Kernels>
ffi::Error bias_act_backward(Kernels kernels, std::string_view act_name, ffi::AnyBuffer dy, ffi::AnyBuffer x,
                             ffi::AnyBuffer bias, ffi::Result<ffi::AnyBuffer> dx, ffi::Result<ffi::AnyBuffer> dbias) {
  const TensorInfo x_info = describe(x), bias_info = describe(bias);
  Activation act{};
  std::optional<ArgError> error = check_bias_act_backward_args(describe(dy), x_info, bias_info);
  if (!error) error = parse_activation_arg(act_name, &act);
  if (!error) error = check_same_as("dx", describe(*dx), "x", x_info);
  if (!error) error = check_same_as("dbias", describe(*dbias), "bias", bias_info);
  if (error) return to_error(kBiasAct, *error);
  const Matrix2D m = as_matrix(x_info.shape);
  return guarded([&] {
    return kernels.backward(dy.untyped_data(), x.untyped_data(), bias.untyped_data(), dx->untyped_data(),
                            dbias->untyped_data(), m.rows, m.cols, *x_info.dtype, act);
  });
}

// twinop-feature: second-order
template <typename Kernels>
ffi::Error bias_act_double_backward(Kernels kernels, std::string_view act_name, ffi::AnyBuffer g,
                                    ffi::AnyBuffer g_bias, ffi::AnyBuffer dy, ffi::AnyBuffer x, ffi::AnyBuffer bias,
                                    ffi::Result<ffi::AnyBuffer> d_dy, ffi::Result<ffi::AnyBuffer> d_x,
                                    ffi::Result<ffi::AnyBuffer> d_bias) {
  const TensorInfo x_info = describe(x), bias_info = describe(bias);
  Activation act{};
  std::optional<ArgError> error =
      check_bias_act_double_backward_args(describe(g), describe(g_bias), describe(dy), x_info, bias_info);
  if (!error) error = parse_activation_arg(act_name, &act);
  if (!error) error = check_same_as("d_dy", describe(*d_dy), "x", x_info);
  if (!error) error = check_same_as("d_x", describe(*d_x), "x", x_info);
  if (!error) error = check_same_as("d_bias", describe(*d_bias), "bias", bias_info);
  if (error) return to_error(kBiasAct, *error);
  const Matrix2D m = as_matrix(x_info.shape);
  return guarded([&] {
    return kernels.double_backward(g.untyped_data(), g_bias.untyped_data(), dy.untyped_data(), x.untyped_data(),
                                   bias.untyped_data(), d_dy->untyped_data(), d_x->untyped_data(),
                                   d_bias->untyped_data(), m.rows, m.cols, *x_info.dtype, act);
  });
}

// twinop-feature: end
// The three handlers' signatures after a platform's contexts (`binding`, e.g.
// ffi::Ffi::Bind().Ctx<ffi::ThreadPool>()): the attribute, then arguments and results in the
// order of the functions above.
template <typename Binding>
auto forward_signature(Binding binding) {
  return std::move(binding)
      .template Attr<std::string_view>("act")
      .template Arg<ffi::AnyBuffer>()   // x
      .template Arg<ffi::AnyBuffer>()   // bias
      .template Ret<ffi::AnyBuffer>();  // y
}

template <typename Binding>
auto backward_signature(Binding binding) {
  return std::move(binding)
      .template Attr<std::string_view>("act")
      .template Arg<ffi::AnyBuffer>()   // dy
      .template Arg<ffi::AnyBuffer>()   // x
      .template Arg<ffi::AnyBuffer>()   // bias
      .template Ret<ffi::AnyBuffer>()   // dx
      .template Ret<ffi::AnyBuffer>();  // dbias
}

// twinop-feature: second-order
template <typename Binding>
auto double_backward_signature(Binding binding) {
  return std::move(binding)
      .template Attr<std::string_view>("act")
      .template Arg<ffi::AnyBuffer>()   // g
      .template Arg<ffi::AnyBuffer>()   // g_bias
      .template Arg<ffi::AnyBuffer>()   // dy
      .template Arg<ffi::AnyBuffer>()   // x
      .template Arg<ffi::AnyBuffer>()   // bias
      .template Ret<ffi::AnyBuffer>()   // d_dy
      .template Ret<ffi::AnyBuffer>()   // d_x
      .template Ret<ffi::AnyBuffer>();  // d_bias
}

// twinop-feature: end
}  // namespace twinop::jax_binding
