// The framework-free C++ API of the fused op on the CPU: y = act(x + bias), its backward and
// its double backward.
// Tensors are raw, dense, row-major buffers viewed as [rows, cols] with cols = bias length.
// The caller owns every buffer (the core never allocates framework memory) and has
// checked shapes and dtypes (see bias_act_args.h). An output either shares no memory with an input
// or is that input exactly (in place: each element is read before it is written).
#pragma once

#include <cstdint>

#include "parallel_for.h"
#include "types.h"

namespace twinop {

// y[r, c] = act(x[r, c] + bias[c])
void bias_act_forward_cpu(const void* x, const void* bias, void* y, std::int64_t rows,
                          std::int64_t cols, DType dtype, Activation act,
                          const ParallelFor& parallel_for = {});

// dx[r, c] = dy[r, c] * act'(x[r, c] + bias[c]);  dbias[c] = sum over r of dx[r, c].
// dbias is summed in an order fixed by the shape alone: bit-identical for any thread count.
void bias_act_backward_cpu(const void* dy, const void* x, const void* bias, void* dx,
                           void* dbias, std::int64_t rows, std::int64_t cols, DType dtype,
                           Activation act, const ParallelFor& parallel_for = {});

// The gradients of the backward's inputs (dy, x, bias), for second-order autodiff. g is the
// gradient arriving at dx and g_bias ([cols]) the one arriving at dbias, which is the same as
// adding g_bias to every row of g. With v = x + bias and G = g + g_bias:
//   d_dy[r, c] = G * act'(v);  d_x[r, c] = G * dy * act''(v);  d_bias[c] = sum over r of d_x[r, c].
// d_bias is summed in the same fixed order as the backward's dbias.
void bias_act_double_backward_cpu(const void* g, const void* g_bias, const void* dy, const void* x,
                                  const void* bias, void* d_dy, void* d_x, void* d_bias, std::int64_t rows,
                                  std::int64_t cols, DType dtype, Activation act,
                                  const ParallelFor& parallel_for = {});

}  // namespace twinop
