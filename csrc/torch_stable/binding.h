// What the PyTorch ops on the LibTorch stable ABI share, whatever the op: the job of
// csrc/torch/binding.h (PyTorch's dtypes described for the core's argument rules, the rules'
// errors, the device checks, the checks of an out= tensor, the thread pool, and on CUDA the current
// stream and a workspace from PyTorch's allocator), through torch/csrc/stable/ alone. Each op's
// files (bias_act_binding.h, rms_norm.cpp) have its schema, argument structs, kernels and registration.
//
// Built with TORCH_TARGET_VERSION = 2.10, the library calls nothing but torch's C shim
// (aoti_torch_* and torch_* functions, which torch keeps binary-compatible across releases), so
// it loads in every torch from 2.10 on. Where the stable API has no equivalent of the classic one:
//  - errors: every failure reaches Python as RuntimeError (no TypeError / ValueError form); the
//    entry points (twinop.torch.bias_act, rms_norm) check their arguments in Python first
//    (python/twinop/torch/_checks.py);
//  - forward-mode tangents: invisible here; the raw ops refuse dual tensors in Python
//    (python/twinop/torch/_dual_check.py), where the classic ops refuse them in C++;
//  - autocast: no API (python/twinop/torch/_autocast.py has the ops' policies);
//  - a `str` argument: taken as the string handle the dispatcher passes (see take_string).
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arg_checks.h"
#include "parallel_for.h"
#include "types.h"

#if defined(TWINOP_WITH_CUDA)
#include <dlfcn.h>

#include "cuda_stream.h"
#endif

namespace twinop::torch_stable_binding {

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

// An error of `op` (its Python name, "twinop.bias_act"), thrown as std::runtime_error, as
// STD_TORCH_CHECK does, but without the C++ function name and build path STD_TORCH_CHECK puts in
// front: the message reads as the classic op's.
[[noreturn]] inline void fail(const char* op, const std::string& message) {
  throw std::runtime_error(std::string(op) + ": " + message);
}

inline void throw_if_error(const char* op, const std::optional<ArgError>& error) {
  if (error) fail(op, error->message);
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

inline void check_same_device(const char* op, const Tensor& x, const Tensor& other, const char* name) {
  if (other.device() != x.device())
    fail(op, std::string(name) + " must be on the device of x (" + device_name(x.device()) + "); got " +
                 device_name(other.device()));
}

// The device checks of an op's tensor arguments, named; x is the first. (The classic check_tensors
// also refuses dual tensors; here _dual_check.py does.)
inline void check_tensors(const char* op, std::initializer_list<std::pair<const Tensor*, const char*>> tensors) {
  const Tensor& x = *tensors.begin()->first;
  for (const auto& [t, name] : tensors) check_same_device(op, x, *t, name);
}

// A `str` argument as the dispatcher passes it: a string handle the kernel owns. Read here rather
// than through TORCH_BOX's std::string_view parameter, whose conversion in torch 2.13's headers
// (stableivalue_conversions.h, ToImpl<std::string>) copies the text into a heap std::string it
// never frees: 48 bytes lost per call (tests/test_torch_stable.py measures it).
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

// twinop-feature: out
// The bytes a contiguous tensor of a supported dtype covers, for the out= overlap rule.
inline ByteRange bytes_of(const Tensor& t) {
  return byte_range(t.const_data_ptr(), t.numel(), element_bytes(*core_dtype(t.scalar_type())));
}

// An out= tensor: like `like` (dtype, shape, device), contiguous, and sharing memory with none of
// `inputs` (the contiguous tensors the kernel reads) unless it is one of `may_be` and the
// kernels run in place.
inline void check_out(const char* op, const Tensor& out, const char* name, const Tensor& like, const char* like_name,
                      std::initializer_list<std::pair<const Tensor*, const char*>> inputs,
                      std::initializer_list<const char*> may_be, bool runs_in_place) {
  throw_if_error(op, check_out_arg(name, describe(out), out.is_contiguous(), like_name, describe(like)));
  check_same_device(op, like, out, name);
  for (const auto& [input, input_name] : inputs) {
    bool may_be_same = false;
    for (const char* allowed : may_be) may_be_same |= std::string_view(allowed) == input_name;
    throw_if_error(op, check_out_overlap(name, bytes_of(out), input_name, bytes_of(*input),
                                         may_be_same && runs_in_place));
  }
}

// twinop-feature: end
// The core's CPU chunks on PyTorch's intra-op thread pool, so torch.set_num_threads applies:
// torch::stable::parallel_for is at::parallel_for behind the C shim (from torch 2.10; the stable
// API also has get_num_threads, and nothing else of ATen/Parallel.h).
inline void torch_parallel_for(std::int64_t chunks, const ChunkBody& body) {
  torch::stable::parallel_for(0, chunks, 1, body);
}

#if defined(TWINOP_WITH_CUDA)
// The stream PyTorch is using on the tensor's device: launching there keeps the op ordered with
// the rest of the program, and capturable by CUDA graphs. The C shim's getter (declared under
// USE_CUDA; there is no stable C++ one before torch 2.13) lives in libtorch_cuda.so, which a
// CPU-only torch lacks: linking it would stop the library from loading there, so it is looked up
// in the torch already loaded, once.
inline cudaStream_t current_stream(const char* op, const Tensor& t) {
  using GetStream = decltype(&aoti_torch_get_current_cuda_stream);
  static const auto get_stream = [] {
    void* torch_cuda = dlopen("libtorch_cuda.so", RTLD_LAZY | RTLD_NOLOAD);
    void* getter = torch_cuda ? dlsym(torch_cuda, "aoti_torch_get_current_cuda_stream") : nullptr;
    return reinterpret_cast<GetStream>(getter);
  }();
  if (!get_stream) fail(op, "got a CUDA tensor, but this torch has no CUDA library loaded (libtorch_cuda.so)");
  void* stream = nullptr;
  TORCH_ERROR_CODE_CHECK(get_stream(t.get_device_index(), &stream));  // as in take_string
  return static_cast<cudaStream_t>(stream);
}

// Scratch for a kernel's deterministic column sums, from PyTorch's caching allocator.
inline Tensor workspace_like(const Tensor& like, std::size_t bytes) {
  return torch::stable::new_empty(like, {static_cast<std::int64_t>(bytes)}, ScalarType::Byte);
}
#endif

}  // namespace twinop::torch_stable_binding
