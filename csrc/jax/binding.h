// What the JAX binding's ops share, whatever the op: XLA's buffers and element types described for
// the core's argument rules (arg_checks.h), the rules' errors as ffi::Error, a guard that keeps C++
// exceptions out of XLA, GPU workspace from XLA's scratch allocator, and the two ends of the
// trace-time checks that python/twinop/jax/_library.py calls through ctypes (arrays described by
// dtype name and shape; an error returned as a kind and a message).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "arg_checks.h"
#include "cuda_stream.h"
#include "types.h"
#include "xla/ffi/api/ffi.h"

// The library's C interface (one handler per op and platform, and each op's trace-time check) is
// exported with default visibility: the library hides everything else.
#define TWINOP_JAX_EXPORT extern "C" __attribute__((visibility("default")))

// Declares one target's handlers, `name`Cpu and `name`Cuda (the latter defined in CUDA builds).
#define TWINOP_JAX_HANDLERS(name)                                               \
  TWINOP_JAX_EXPORT XLA_FFI_Error* name##Cpu(XLA_FFI_CallFrame* call_frame); \
  TWINOP_JAX_EXPORT XLA_FFI_Error* name##Cuda(XLA_FFI_CallFrame* call_frame)

namespace twinop::jax_binding {

namespace ffi = ::xla::ffi;

inline std::optional<DType> core_dtype(ffi::DataType type) {
  switch (type) {
    case ffi::DataType::F32: return DType::kFloat32;
    case ffi::DataType::F64: return DType::kFloat64;
    case ffi::DataType::F16: return DType::kFloat16;
    case ffi::DataType::BF16: return DType::kBFloat16;
    default: return std::nullopt;
  }
}

inline TensorInfo describe(const ffi::AnyBuffer& buffer) {
  const auto dims = buffer.dimensions();
  std::ostringstream name;  // XLA's own spelling: F32, BF16, S32, ...
  name << buffer.element_type();
  return {{dims.begin(), dims.end()}, core_dtype(buffer.element_type()), name.str()};
}

// The contexts a handler binds before its attributes and buffers. CPU: XLA's intra-op thread pool
// (xla_parallel_for.h). CUDA: the stream XLA runs this call on, so the op stays ordered with the
// rest of the program, and scratch memory from XLA's allocator.
inline auto cpu_context() { return ffi::Ffi::Bind().Ctx<ffi::ThreadPool>(); }
inline auto cuda_context() {
  return ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::ScratchAllocator>();
}

// XLA reports a bad argument as INVALID_ARGUMENT whatever its kind; twinop.jax raises TypeError /
// ValueError with the same words before anything runs (the checks below). op: "twinop.bias_act".
inline ffi::Error to_error(const char* op, const ArgError& error) {
  return ffi::Error::InvalidArgument(std::string(op) + ": " + error.message);
}

// Runs a launch, turning a C++ exception from the core (a CUDA error) into a failed call:
// no exception may cross into XLA.
template <typename Fn>
ffi::Error guarded(Fn&& launch) {
  try {
    return launch();
  } catch (const std::exception& e) {
    return ffi::Error::Internal(e.what());
  }
}

// GPU scratch for a backward's deterministic column sums. XLA frees it when the handler returns,
// while the kernels may still be queued: its allocator is stream-ordered, as for XLA's own
// temporaries (jaxlib's GPU solvers take their workspaces the same way).
inline ffi::Error allocate_workspace(ffi::ScratchAllocator& scratch, std::size_t bytes, const char* op,
                                     void** workspace) {
  if (bytes == 0) return ffi::Error::Success();  // an empty input needs none
  const std::optional<void*> memory = scratch.Allocate(bytes, alignof(std::max_align_t));
  if (!memory) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                      std::string(op) + ": cannot allocate " + std::to_string(bytes) + " bytes of GPU workspace");
  }
  *workspace = *memory;
  return ffi::Error::Success();
}

// twinop-feature: shapes
// ---- the trace-time checks, where JAX knows every shape and dtype ----

// `count` arrays as Python describes them: dtype names, ranks and shapes.
inline std::vector<TensorInfo> describe_arrays(int count, const char* const* dtype_names, const int* ranks,
                                               const std::int64_t* const* shapes) {
  std::vector<TensorInfo> tensors;
  for (int i = 0; i < count; ++i) {
    tensors.push_back({{shapes[i], shapes[i] + ranks[i]}, dtype_from_name(dtype_names[i]), dtype_names[i]});
  }
  return tensors;
}

// What a check returns to Python: 0 when the rules hold; otherwise 1 for a TypeError or 2 for a
// ValueError, with the message written to `message` (NUL-terminated, cut to `message_size`).
inline int report(const std::optional<ArgError>& error, char* message, std::size_t message_size) {
  if (!error) return 0;
  const std::size_t length = std::min(error->message.size(), message_size - 1);
  std::memcpy(message, error->message.data(), length);
  message[length] = '\0';
  return error->kind == ArgError::Kind::kType ? 1 : 2;
}

}  // namespace twinop::jax_binding
