// The framework-free C++ API of the fused op on the CPU: y = act(x + bias) and its backward.
// Tensors are raw, dense, row-major buffers viewed as [rows, cols] with cols = bias length.
// The caller owns every buffer (the core never allocates framework memory) and has
// checked shapes and dtypes (see validate.h).
#pragma once

#include <cstdint>

#include "types.h"

namespace twinop {

// y[r, c] = act(x[r, c] + bias[c])
void bias_act_forward_cpu(const void* x, const void* bias, void* y, std::int64_t rows,
                          std::int64_t cols, DType dtype, Activation act);

// dx[r, c] = dy[r, c] * act'(x[r, c] + bias[c]);  dbias[c] = sum over r of dx[r, c]
void bias_act_backward_cpu(const void* dy, const void* x, const void* bias, void* dx,
                           void* dbias, std::int64_t rows, std::int64_t cols, DType dtype,
                           Activation act);

}  // namespace twinop
