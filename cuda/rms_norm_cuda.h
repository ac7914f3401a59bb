// The framework-free C++ API of RMSNorm on NVIDIA GPUs, in the same shape as the CPU API
// (csrc/core/rms_norm.h) plus the stream to launch on and a caller-owned workspace.
// Compiles without CUDA headers, so bindings can include it from plain C++ files.
// Every function works on the current CUDA device: the binding makes the tensors' device
// current first. Nothing here allocates or synchronizes, so calls can be captured in a CUDA graph.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda_stream.h"
#include "types.h"

namespace twinop {

// y and rstd (rstd may be nullptr where nobody needs it), as rms_norm_forward_cpu.
void rms_norm_forward_cuda(const void* x, const void* weight, void* y, void* rstd, std::int64_t rows,
                           std::int64_t cols, DType dtype, DType weight_dtype, double eps, double offset,
                           cudaStream_t stream);

// s = x + residual rounded to dtype, then y and rstd of RMSNorm at s, as add_rms_norm_forward_cpu.
void add_rms_norm_forward_cuda(const void* x, const void* residual, const void* weight, void* y, void* s,
                               void* rstd, std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype,
                               double eps, double offset, cudaStream_t stream);

// Bytes of device workspace that the backward functions need for these sizes (0 for an empty
// input); it depends on the sizes and dtypes alone, not on the device. The framework allocates it,
// 8-byte aligned (any allocator's buffer is), and passes its size, which is checked; its contents
// need no initialisation.
std::size_t rms_norm_cuda_workspace_bytes(std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype);

// dx and dweight as rms_norm_backward_cpu; dweight is reduced in an order fixed by the shape: the
// same inputs give bit-identical results on any GPU.
void rms_norm_backward_cuda(const void* dy, const void* x, const void* rstd, const void* weight, void* dx,
                            void* dweight, void* workspace, std::size_t workspace_bytes, std::int64_t rows,
                            std::int64_t cols, DType dtype, DType weight_dtype, double offset, cudaStream_t stream);

// The backward of add_rms_norm at its s, as add_rms_norm_backward_cpu: dx is RMSNorm's dx at s
// plus ds.
void add_rms_norm_backward_cuda(const void* dy, const void* ds, const void* s, const void* rstd, const void* weight,
                                void* dx, void* dweight, void* workspace, std::size_t workspace_bytes,
                                std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype, double offset,
                                cudaStream_t stream);

}  // namespace twinop
