// The framework-free C++ API of RMSNorm on the CPU, with the fused residual add of pre-norm
// transformer blocks:
//   y[r, :] = x[r, :] * rstd[r] * (weight + offset),  rstd[r] = 1 / sqrt(mean over c of x[r, c]^2 + eps)
// Tensors are raw, dense, row-major buffers viewed as [rows, cols], cols = weight length. x, y
// (and residual, s, dy, ds, dx) have `dtype`; weight and dweight `weight_dtype`: dtype, or
// float32 for float16 and bfloat16 inputs (float32 parameters in mixed precision). Math runs in
// float32 (float64 for float64) and each output is rounded once; rstd is [rows] in that compute
// type. The caller owns every buffer and has checked shapes, dtypes and attributes
// (rms_norm_args.h). An output either shares no memory with an input or is that input exactly (in
// place: each element is read before it is written).
#pragma once

#include <cstdint>

#include "parallel_for.h"
#include "types.h"

namespace twinop {

// y and rstd (rstd may be nullptr where nobody needs it).
void rms_norm_forward_cpu(const void* x, const void* weight, void* y, void* rstd, std::int64_t rows,
                          std::int64_t cols, DType dtype, DType weight_dtype, double eps, double offset,
                          const ParallelFor& parallel_for = {});

// s = x + residual, rounded to dtype (as the framework's own x + residual is), then y and rstd of
// RMSNorm at s, in one pass over the inputs.
void add_rms_norm_forward_cpu(const void* x, const void* residual, const void* weight, void* y, void* s,
                              void* rstd, std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype,
                              double eps, double offset, const ParallelFor& parallel_for = {});

// rstd alone, for a backward whose caller did not keep the forward's.
void rms_norm_rstd_cpu(const void* x, void* rstd, std::int64_t rows, std::int64_t cols, DType dtype, double eps,
                       const ParallelFor& parallel_for = {});

// With g = dy * (weight + offset) and x_hat = x * rstd:
//   dx[r, :] = rstd[r] * (g - x_hat * mean over c of g * x_hat);  dweight[c] = sum over r of dy * x_hat.
// dweight is summed in an order fixed by the shape alone: bit-identical for any thread count.
void rms_norm_backward_cpu(const void* dy, const void* x, const void* rstd, const void* weight, void* dx,
                           void* dweight, std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype,
                           double offset, const ParallelFor& parallel_for = {});

// The backward of add_rms_norm, at its s: dx (which is also d_residual) is RMSNorm's dx at s plus
// ds, the gradient arriving at the returned s, in the same pass.
void add_rms_norm_backward_cpu(const void* dy, const void* ds, const void* s, const void* rstd, const void* weight,
                               void* dx, void* dweight, std::int64_t rows, std::int64_t cols, DType dtype,
                               DType weight_dtype, double offset, const ParallelFor& parallel_for = {});

}  // namespace twinop
