// What the PyTorch ops share, whatever the op: PyTorch's dtypes described for the core's argument
// rules (arg_checks.h), the rules' errors as PyTorch's TypeError / ValueError (TORCH_CHECK_TYPE /
// _VALUE), the device and forward-mode checks, the checks of an out= tensor, the thread pool, and
// on CUDA the current stream and a workspace from PyTorch's allocator. Each op's file (bias_act_binding.h,
// rms_norm.cpp) has its schema, argument structs, kernels and registration.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/Exception.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "arg_checks.h"
#include "cuda_stream.h"
#include "parallel_for.h"
#include "types.h"

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

// An argument error of `op` (its Python name, "twinop.bias_act") as PyTorch's own ops raise it.
inline void throw_if_error(const char* op, const std::optional<ArgError>& error) {
  if (!error) return;
  if (error->kind == ArgError::Kind::kType) TORCH_CHECK_TYPE(false, op, ": ", error->message);
  TORCH_CHECK_VALUE(false, op, ": ", error->message);
}

inline void check_same_device(const char* op, const at::Tensor& x, const at::Tensor& other, const char* name) {
  TORCH_CHECK(other.device() == x.device(), op, ": ", name, " must be on the device of x (", x.device(), "); got ",
              other.device());
}

// twinop-feature: forward-mode
// The ops' autograd (torch.library.register_autograd) has no forward-mode derivative: PyTorch
// would return an output without a tangent, a silent zero. The differentiable entry points
// (twinop.torch.bias_act, rms_norm), autograd.Functions with a jvp, never pass a dual tensor down.
inline void check_not_dual(const char* op, const at::Tensor& t, const char* name) {
  const std::string_view function = std::string_view(op).substr(std::string_view("twinop.").size());
  TORCH_CHECK(!t._fw_grad(/*level=*/0).defined(), op, ": ", name,
              " carries a forward-mode tangent, which the raw ops torch.ops.twinop.* drop; ",
              "call twinop.torch.", function, " for forward-mode AD");
}

// twinop-feature: end
// The device and forward-mode checks of an op's tensor arguments, named; x is the first.
inline void check_tensors(const char* op, std::initializer_list<std::pair<const at::Tensor*, const char*>> tensors) {
  const at::Tensor& x = *tensors.begin()->first;
  for (const auto& [t, name] : tensors) {
    check_same_device(op, x, *t, name);
    check_not_dual(op, *t, name);
  }
}

// The core's CPU chunks on PyTorch's intra-op thread pool, so torch.set_num_threads applies.
inline void torch_parallel_for(std::int64_t chunks, const ChunkBody& body) { at::parallel_for(0, chunks, 1, body); }

// twinop-feature: out
inline ByteRange bytes_of(const at::Tensor& t) { return byte_range(t.const_data_ptr(), t.numel(), t.element_size()); }

// An out= tensor: like `like` (dtype, shape, device), contiguous, and sharing memory with none of
// `inputs` (the contiguous tensors the kernel reads) unless it is one of `may_be` and the
// kernels run in place.
inline void check_out(const char* op, const at::Tensor& out, const char* name, const at::Tensor& like,
                      const char* like_name, std::initializer_list<std::pair<const at::Tensor*, const char*>> inputs,
                      std::initializer_list<const char*> may_be, bool runs_in_place) {
  throw_if_error(op, check_out_arg(name, describe(out), out.is_contiguous(), like_name, describe(like)));
  check_same_device(op, like, out, name);
  check_not_dual(op, out, name);
  for (const auto& [input, input_name] : inputs) {
    bool may_be_same = false;
    for (const char* allowed : may_be) may_be_same |= std::string_view(allowed) == input_name;
    throw_if_error(op, check_out_overlap(name, bytes_of(out), input_name, bytes_of(*input),
                                         may_be_same && runs_in_place));
  }
}

// twinop-feature: end
// The stream PyTorch is using on the tensor's device: launching there keeps the op ordered
// with the rest of the program, and capturable by CUDA graphs. Plain C++ over c10's
// device-generic API, so it compiles against any torch build, the CPU-only wheel included.
inline cudaStream_t current_stream(const at::Tensor& t) {
  const auto* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
  return static_cast<cudaStream_t>(impl->getStream(t.device()).native_handle());
}

// Scratch for a kernel's deterministic column sums, from PyTorch's caching allocator.
inline at::Tensor workspace_like(const at::Tensor& like, std::size_t bytes) {
  return at::empty({static_cast<std::int64_t>(bytes)}, like.options().dtype(at::kByte));
}

}  // namespace twinop::torch_binding
