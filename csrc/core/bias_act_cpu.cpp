// CPU kernels of the fused op: one pass over the data for the forward, the backward and the
// double backward, rows cut into chunks for the caller's threads, inner loops written to vectorize.
#include <cstdint>

#include "bias_act.h"
#include "compute_type.h"
#include "cpu_clones.h"
#include "dispatch.h"
#include "parallel_for.h"
#include "storage_dispatch.h"

namespace twinop {
namespace {

// The precision the results are rounded to, by which the activation math picks its approximations.
template <typename S>
constexpr math::Precision<kSignificantBits<S>> precision_of{};

template <typename S, typename Act>
TWINOP_CPU_CLONES void forward_rows(const S* x, const compute_t<S>* b, S* y, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const S* x_row = x + r * cols;
    S* y_row = y + r * cols;
    for (std::int64_t c = 0; c < cols; ++c)
      y_row[c] = from_compute<S>(Act::value(to_compute(x_row[c]) + b[c], precision_of<S>));
  }
}

// dx for `rows` rows, and their column sums added to dbias_sum (in row order).
template <typename S, typename Act>
TWINOP_CPU_CLONES void backward_rows(const S* dy, const S* x, const compute_t<S>* b, S* dx,
                                     compute_t<S>* dbias_sum, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t offset = r * cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      const compute_t<S> grad =
          to_compute(dy[offset + c]) * Act::derivative(to_compute(x[offset + c]) + b[c], precision_of<S>);
      dx[offset + c] = from_compute<S>(grad);
      dbias_sum[c] += grad;  // summed before rounding to S, like the CUDA kernel
    }
  }
}

// d_dy and d_x for `rows` rows, and the column sums of d_x added to d_bias_sum (in row order).
template <typename S, typename Act>
TWINOP_CPU_CLONES void double_backward_rows(const S* g, const compute_t<S>* g_b, const S* dy, const S* x,
                                            const compute_t<S>* b, S* d_dy, S* d_x, compute_t<S>* d_bias_sum,
                                            std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t offset = r * cols;
    // No element is read after another iteration writes it (bias_act.h: outputs are disjoint
    // from the inputs or are them exactly), which GCC cannot prove for eight pointers: without
    // this it left the loop scalar (4096 x 4096 float32 gelu: 125 ms, 48 ms with it).
#pragma GCC ivdep
    for (std::int64_t c = 0; c < cols; ++c) {
      const compute_t<S> grad = to_compute(g[offset + c]) + g_b[c];
      const compute_t<S> v = to_compute(x[offset + c]) + b[c];
      const compute_t<S> grad_x = grad * to_compute(dy[offset + c]) * Act::second_derivative(v, precision_of<S>);
      d_dy[offset + c] = from_compute<S>(grad * Act::derivative(v, precision_of<S>));
      d_x[offset + c] = from_compute<S>(grad_x);
      d_bias_sum[c] += grad_x;
    }
  }
}

template <typename S, typename Act>
void forward(const S* x, const S* bias, S* y, std::int64_t rows, std::int64_t cols, const ParallelFor& parallel_for) {
  if (cols == 0) return;
  const auto b = row_in_compute_type<compute_t<S>>(bias, cols);
  for_row_chunks(rows, cols, parallel_for, [&](std::int64_t first_row, std::int64_t row_count) {
    forward_rows<S, Act>(x + first_row * cols, b.data(), y + first_row * cols, row_count, cols);
  });
}

template <typename S, typename Act>
void backward(const S* dy, const S* x, const S* bias, S* dx, S* dbias, std::int64_t rows, std::int64_t cols,
              const ParallelFor& parallel_for) {
  if (cols == 0) return;
  const auto b = row_in_compute_type<compute_t<S>>(bias, cols);
  rows_with_column_sums(rows, cols, parallel_for, dbias, [&](std::int64_t first, std::int64_t count, compute_t<S>* sums) {
    const std::int64_t offset = first * cols;
    backward_rows<S, Act>(dy + offset, x + offset, b.data(), dx + offset, sums, count, cols);
  });
}

template <typename S, typename Act>
void double_backward(const S* g, const S* g_bias, const S* dy, const S* x, const S* bias, S* d_dy, S* d_x,
                     S* d_bias, std::int64_t rows, std::int64_t cols, const ParallelFor& parallel_for) {
  if (cols == 0) return;
  const auto g_b = row_in_compute_type<compute_t<S>>(g_bias, cols);
  const auto b = row_in_compute_type<compute_t<S>>(bias, cols);
  rows_with_column_sums(rows, cols, parallel_for, d_bias, [&](std::int64_t first, std::int64_t count, compute_t<S>* sums) {
    const std::int64_t offset = first * cols;
    double_backward_rows<S, Act>(g + offset, g_b.data(), dy + offset, x + offset, b.data(), d_dy + offset,
                                 d_x + offset, sums, count, cols);
  });
}

}  // namespace

void bias_act_forward_cpu(const void* x, const void* bias, void* y, std::int64_t rows, std::int64_t cols,
                          DType dtype, Activation act, const ParallelFor& parallel_for) {
  visit_storage(dtype, [&](auto storage_tag) {
    using S = decltype(storage_tag);
    visit_activation(act, [&](auto functor) {
      forward<S, decltype(functor)>(static_cast<const S*>(x), static_cast<const S*>(bias), static_cast<S*>(y), rows,
                                    cols, parallel_for);
    });
  });
}

void bias_act_backward_cpu(const void* dy, const void* x, const void* bias, void* dx, void* dbias, std::int64_t rows,
                           std::int64_t cols, DType dtype, Activation act, const ParallelFor& parallel_for) {
  visit_storage(dtype, [&](auto storage_tag) {
    using S = decltype(storage_tag);
    visit_activation(act, [&](auto functor) {
      backward<S, decltype(functor)>(static_cast<const S*>(dy), static_cast<const S*>(x), static_cast<const S*>(bias),
                                     static_cast<S*>(dx), static_cast<S*>(dbias), rows, cols, parallel_for);
    });
  });
}

void bias_act_double_backward_cpu(const void* g, const void* g_bias, const void* dy, const void* x,
                                  const void* bias, void* d_dy, void* d_x, void* d_bias, std::int64_t rows,
                                  std::int64_t cols, DType dtype, Activation act, const ParallelFor& parallel_for) {
  visit_storage(dtype, [&](auto storage_tag) {
    using S = decltype(storage_tag);
    visit_activation(act, [&](auto functor) {
      double_backward<S, decltype(functor)>(static_cast<const S*>(g), static_cast<const S*>(g_bias),
                                            static_cast<const S*>(dy), static_cast<const S*>(x),
                                            static_cast<const S*>(bias), static_cast<S*>(d_dy), static_cast<S*>(d_x),
                                            static_cast<S*>(d_bias), rows, cols, parallel_for);
    });
  });
}

}  // namespace twinop
