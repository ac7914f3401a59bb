// The framework-free C++ API of the fused op on NVIDIA GPUs: forward, backward and double
// backward, in the same shape as the CPU API (csrc/core/bias_act.h) plus the stream to launch
// on and a caller-owned workspace.
// Compiles without CUDA headers, so bindings can include it from plain C++ files.
// Every function works on the current CUDA device: the binding makes the tensors' device
// current first. Nothing here allocates or synchronizes, so calls can be captured in a CUDA graph.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda_stream.h"
#include "types.h"

namespace twinop {

// y[r, c] = act(x[r, c] + bias[c]), launched on `stream`. Throws std::runtime_error on a
// CUDA error.
void bias_act_forward_cuda(const void* x, const void* bias, void* y, std::int64_t rows,
                           std::int64_t cols, DType dtype, Activation act, cudaStream_t stream);

// Bytes of device workspace that bias_act_backward_cuda and bias_act_double_backward_cuda need
// for these sizes (0 for an empty input); it depends on the sizes alone, not on the device. The
// framework allocates it, 8-byte aligned (any allocator's buffer is), and passes its size, which
// is checked; its contents need no initialisation.
std::size_t bias_act_cuda_workspace_bytes(std::int64_t rows, std::int64_t cols, DType dtype);

// dx = dy * act'(x + bias) and dbias = column sums of dx, in one pass over the data.
// dbias is reduced in a fixed order: the same inputs give bit-identical results on any GPU.
void bias_act_backward_cuda(const void* dy, const void* x, const void* bias, void* dx, void* dbias,
                            void* workspace, std::size_t workspace_bytes, std::int64_t rows,
                            std::int64_t cols, DType dtype, Activation act, cudaStream_t stream);

// The gradients of the backward's inputs, as bias_act_double_backward_cpu (csrc/core/bias_act.h):
// with v = x + bias and G = g + g_bias, d_dy = G * act'(v), d_x = G * dy * act''(v), d_bias =
// column sums of d_x, reduced in a fixed order like dbias.
void bias_act_double_backward_cuda(const void* g, const void* g_bias, const void* dy, const void* x,
                                   const void* bias, void* d_dy, void* d_x, void* d_bias, void* workspace,
                                   std::size_t workspace_bytes, std::int64_t rows, std::int64_t cols,
                                   DType dtype, Activation act, cudaStream_t stream);

}  // namespace twinop
