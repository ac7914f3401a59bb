// Turns the runtime DType into the CPU storage type the kernels are instantiated for (the GPU's
// counterpart is cuda/storage_dispatch.cuh).
#pragma once

#include <stdexcept>
#include <type_traits>

#include "half_cpu.h"
#include "types.h"

namespace twinop {

// Calls fn(S{}) with the storage type that `dtype` names.
template <typename Fn>
void visit_storage(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{});
    case DType::kFloat64: return fn(double{});
    case DType::kFloat16: return fn(cpu::Float16{});
    case DType::kBFloat16: return fn(cpu::BFloat16{});
  }
  throw std::invalid_argument("twinop: dtype enum out of range");
}

// Calls fn(P{}) with the storage type of a parameter (a weight) that goes with inputs of storage S:
// S itself, or float for float16 and bfloat16 inputs (mixed precision: float32 parameters).
template <typename S, typename Fn>
void visit_parameter_storage(DType dtype, Fn&& fn) {
  if constexpr (std::is_same_v<S, cpu::Float16> || std::is_same_v<S, cpu::BFloat16>) {
    if (dtype == DType::kFloat32) return fn(float{});
  }
  visit_storage(dtype, [&](auto storage_tag) {
    if constexpr (std::is_same_v<decltype(storage_tag), S>) {
      fn(S{});
    } else {
      throw std::invalid_argument("twinop: a parameter of this dtype does not go with these inputs");
    }
  });
}

}  // namespace twinop
