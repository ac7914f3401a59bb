// The framework-free C++ API of the fused op on NVIDIA GPUs; same shape as the CPU API
// (csrc/core/bias_act.h) plus the stream to launch on and a caller-owned workspace.
// Compiles without CUDA headers, so bindings can include it from plain C++ files.
// Every function works on the current CUDA device: the binding makes the tensors' device
// current first. Nothing here allocates or synchronizes, so calls can be captured in a CUDA graph.
#pragma once

#include <cstddef>
#include <cstdint>

#include "types.h"

// The same declaration as CUDA's driver_types.h: an opaque stream handle.
typedef struct CUstream_st* cudaStream_t;

namespace twinop {

// y[r, c] = act(x[r, c] + bias[c]), launched on `stream`. Throws std::runtime_error on a
// CUDA error.
void bias_act_forward_cuda(const void* x, const void* bias, void* y, std::int64_t rows,
                           std::int64_t cols, DType dtype, Activation act, cudaStream_t stream);

// Bytes of device workspace bias_act_backward_cuda needs for these sizes on the current
// device (0 for an empty input). The framework allocates it, 8-byte aligned (any allocator's
// buffer is); its contents need no initialisation.
std::size_t bias_act_backward_cuda_workspace_bytes(std::int64_t rows, std::int64_t cols,
                                                   DType dtype);

// dx = dy * act'(x + bias) and dbias = column sums of dx, in one pass over the data.
// dbias is reduced in a fixed order: the same inputs give bit-identical results.
void bias_act_backward_cuda(const void* dy, const void* x, const void* bias, void* dx,
                            void* dbias, void* workspace, std::int64_t rows, std::int64_t cols,
                            DType dtype, Activation act, cudaStream_t stream);

}  // namespace twinop
