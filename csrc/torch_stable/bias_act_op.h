// The PyTorch ops on the LibTorch stable ABI, written once for every device: the job of
// csrc/torch/bias_act_op.h (map PyTorch tensors, dtypes and strings onto the core's types,
// check the arguments, allocate outputs with PyTorch and hand them to a device's `Kernels`),
// through torch/csrc/stable/ alone. Built with TORCH_TARGET_VERSION = 2.10, the library calls
// nothing but torch's C shim (aoti_torch_* and torch_* functions, which torch keeps
// binary-compatible across releases), so it loads in every torch from 2.10 on. Where the stable
// API has no equivalent of the classic one:
//  - errors: every failure reaches Python as RuntimeError (no TypeError / ValueError form);
//    twinop.torch.bias_act checks its arguments in Python first (python/twinop/torch/_checks.py);
//  - forward-mode tangents: invisible here; the raw ops refuse dual tensors in Python
//    (python/twinop/torch/_dual_check.py), where the classic op refuses them in C++;
//  - the `str act` argument: taken as the string handle the dispatcher passes (see take_string).
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "types.h"
#include "validate.h"

namespace twinop::torch_stable {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

inline std::optional<DType> core_dtype(ScalarType type) {
  switch (type) {
    case ScalarType::Float: return DType::kFloat32;
    case ScalarType::Double: return DType::kFloat64;
    case ScalarType::Half: return DType::kFloat16;
    case ScalarType::BFloat16: return DType::kBFloat16;
    default: return std::nullopt;
  }
}

inline std::vector<std::int64_t> shape_of(const Tensor& t) {
  const auto sizes = t.sizes();
  return {sizes.begin(), sizes.end()};
}

inline TensorInfo describe(const Tensor& t) {
  return {shape_of(t), core_dtype(t.scalar_type()), torch::headeronly::toString(t.scalar_type())};
}

// Thrown as std::runtime_error, as STD_TORCH_CHECK does, but without the C++ function name and
// build path STD_TORCH_CHECK puts in front: the message reads as the classic op's.
[[noreturn]] inline void fail(const std::string& message) {
  throw std::runtime_error("twinop.bias_act: " + message);
}

inline void throw_if_error(const std::optional<ArgError>& error) {
  if (error) fail(error->message);
}

// c10::Device's spelling ("cpu", "cuda:0"), which the stable Device has no printer for.
inline std::string device_name(const torch::stable::Device& device) {
  using torch::headeronly::DeviceType;
  std::string type;
  switch (device.type()) {
    case DeviceType::CPU: type = "cpu"; break;
    case DeviceType::CUDA: type = "cuda"; break;
    case DeviceType::Meta: type = "meta"; break;
    default: type = "device type " + std::to_string(static_cast<int>(device.type()));
  }
  return device.has_index() ? type + ":" + std::to_string(device.index()) : type;
}

inline void check_same_device(const Tensor& x, const Tensor& other, const char* name) {
  if (other.device() != x.device())
    fail(std::string(name) + " must be on the device of x (" + device_name(x.device()) + "); got " +
         device_name(other.device()));
}

// The `str act` argument as the dispatcher passes it: a string handle the kernel owns. Read here
// rather than through TORCH_BOX's std::string_view parameter, whose conversion in torch 2.13's
// headers (stableivalue_conversions.h, ToImpl<std::string>) copies the text into a heap
// std::string it never frees: 48 bytes lost per call (tests/test_torch_stable.py measures it).
inline std::string take_string(StringHandle handle) {
  const std::unique_ptr<StringOpaque, AOTITorchError (*)(StringHandle)> owned(handle, torch_delete_string);
  std::size_t length = 0;
  const char* data = nullptr;
  // TORCH_ERROR_CODE_CHECK, not STABLE_TORCH_ERROR_CODE_CHECK: the latter is new in torch 2.13's
  // headers (and means the former for a 2.10 target), and the library builds against 2.10 on.
  TORCH_ERROR_CODE_CHECK(torch_string_length(handle, &length));
  TORCH_ERROR_CODE_CHECK(torch_string_c_str(handle, &data));
  return std::string(data, length);
}

// torch::stable::contiguous is a dispatcher call even for a contiguous tensor (at::Tensor's
// contiguous() is not): asked only where a copy is needed.
inline Tensor as_contiguous(const Tensor& t) {
  return t.is_contiguous() ? t : torch::stable::contiguous(t);
}

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
  throw_if_error(parse_activation_arg(act, &parsed));
  return parsed;
}

inline ForwardArgs forward_args(const Tensor& x, const Tensor& bias, std::string_view act) {
  throw_if_error(check_forward_args(describe(x), describe(bias)));
  check_same_device(x, bias, "bias");
  return {as_contiguous(x), as_contiguous(bias), as_matrix(shape_of(x)), *core_dtype(x.scalar_type()),
          parse_act(act)};
}

inline BackwardArgs backward_args(const Tensor& dy, const Tensor& x, const Tensor& bias, std::string_view act) {
  throw_if_error(check_backward_args(describe(dy), describe(x), describe(bias)));
  check_same_device(x, bias, "bias");
  check_same_device(x, dy, "dy");
  return {as_contiguous(dy), as_contiguous(x), as_contiguous(bias), as_matrix(shape_of(x)),
          *core_dtype(x.scalar_type()), parse_act(act)};
}

// twinop-feature: second-order
inline DoubleBackwardArgs double_backward_args(const Tensor& g, const Tensor& g_bias, const Tensor& dy,
                                              const Tensor& x, const Tensor& bias, std::string_view act) {
  throw_if_error(check_double_backward_args(describe(g), describe(g_bias), describe(dy), describe(x), describe(bias)));
  check_same_device(x, bias, "bias");
  check_same_device(x, dy, "dy");
  check_same_device(x, g, "g");
  check_same_device(x, g_bias, "g_bias");
  return {as_contiguous(g), as_contiguous(g_bias), as_contiguous(dy), as_contiguous(x), as_contiguous(bias),
          as_matrix(shape_of(x)), *core_dtype(x.scalar_type()), parse_act(act)};
}

// twinop-feature: out
// The bytes a contiguous tensor of a supported dtype covers, for the out= overlap rule.
inline ByteRange bytes_of(const Tensor& t) {
  return byte_range(t.const_data_ptr(), t.numel(), element_bytes(*core_dtype(t.scalar_type())));
}

// An out= tensor: like `like` (dtype, shape, device), contiguous, and sharing memory with none of
// `inputs` (the contiguous tensors the kernel reads) unless it is one of `may_be` and the
// kernels run in place (as csrc/torch/bias_act_op.h's check_out).
inline void check_out(const Tensor& out, const char* name, const Tensor& like, const char* like_name,
                      std::initializer_list<std::pair<const Tensor*, const char*>> inputs,
                      std::initializer_list<const char*> may_be, bool runs_in_place) {
  throw_if_error(check_out_arg(name, describe(out), out.is_contiguous(), like_name, describe(like)));
  check_same_device(like, out, name);
  for (const auto& [input, input_name] : inputs) {
    bool may_be_same = false;
    for (const char* allowed : may_be) may_be_same |= std::string_view(allowed) == input_name;
    throw_if_error(check_out_overlap(name, bytes_of(out), input_name, bytes_of(*input), may_be_same && runs_in_place));
  }
}

// twinop-feature: end
// The kernels take the activation as a StringHandle (see take_string); TORCH_BOX boxes them.
// Unlike the classic templates, no device guard here: the stable DeviceGuard is the
// accelerator's, so the CUDA kernels take it (bias_act_cuda.cpp).
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
  check_out(out, "out", args.x, "x", {{&args.x, "x"}, {&args.bias, "bias"}}, {"x"}, Kernels::kRunsInPlace);
  Kernels::forward(args, out);
  return out;
}

template <typename Kernels>
std::tuple<Tensor, Tensor> bias_act_backward_out(const Tensor& dy, const Tensor& x, const Tensor& bias,
                                                 StringHandle act, Tensor dx, Tensor dbias) {
  const std::string act_name = take_string(act);
  const BackwardArgs args = backward_args(dy, x, bias, act_name);
  const auto inputs = {std::pair{&args.dy, "dy"}, {&args.x, "x"}, {&args.bias, "bias"}};
  check_out(dx, "dx", args.x, "x", inputs, {"dy", "x"}, Kernels::kRunsInPlace);
  check_out(dbias, "dbias", args.bias, "bias", inputs, {}, Kernels::kRunsInPlace);
  throw_if_error(check_out_overlap("dbias", bytes_of(dbias), "dx", bytes_of(dx), /*may_be_same=*/false));
  Kernels::backward(args, dx, dbias);
  return {dx, dbias};
}

// twinop-feature: end
}  // namespace twinop::torch_stable
