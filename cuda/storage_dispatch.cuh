// Turns the runtime DType into the CUDA storage type the kernels are instantiated for.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>

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

}  // namespace twinop::cuda_detail
