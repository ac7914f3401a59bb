// One error check for every CUDA runtime call and launch: turns a failure into a
// std::runtime_error that names the CUDA error, the failing call and where it was made.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace twinop::cuda_detail {

inline void throw_on_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw std::runtime_error(std::string("twinop: CUDA error ") + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ") from " + call + " at " + file + ":" +
                           std::to_string(line));
}

}  // namespace twinop::cuda_detail

#define TWINOP_CUDA_CHECK(call) \
  ::twinop::cuda_detail::throw_on_cuda_error((call), #call, __FILE__, __LINE__)
