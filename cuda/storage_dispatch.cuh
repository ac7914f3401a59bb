// Turns the runtime DType into the CUDA storage type the kernels are instantiated for.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>
#include <type_traits>

#include "types.h"

namespace twinop::cuda_detail {

// Calls fn(S{}) with the storage type that `dtype` names.
template <typename Fn>
void visit_storage(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{});
    case DType::kFloat64: return fn(double{});
    case DType::kFloat16: return fn(__half{});
    case DType::kBFloat16: return fn(__nv_bfloat16{});
  }
  throw std::invalid_argument("twinop: dtype enum out of range");
}

// Calls fn(P{}) with the storage type of a parameter (a weight) of inputs of storage S: S itself,
// or float for float16 and bfloat16 inputs (float32 parameters in mixed precision), as on the CPU.
template <typename S, typename Fn>
void visit_parameter_storage(DType dtype, Fn&& fn) {
  visit_storage(dtype, [&](auto parameter_tag) {
    using P = decltype(parameter_tag);
    if constexpr (std::is_same_v<P, S> || (std::is_same_v<P, float> && sizeof(S) == 2)) {
      fn(parameter_tag);
    } else {
      throw std::invalid_argument("twinop: a parameter of this dtype does not go with these inputs");
    }
  });
}

// Calls fn(S{}, P{}): the storage types of the inputs and of their parameter.
template <typename Fn>
void visit_input_and_parameter_storage(DType dtype, DType parameter_dtype, Fn&& fn) {
  visit_storage(dtype, [&](auto input_tag) {
    visit_parameter_storage<decltype(input_tag)>(parameter_dtype,
                                                 [&](auto parameter_tag) { fn(input_tag, parameter_tag); });
  });
}

}  // namespace twinop::cuda_detail
