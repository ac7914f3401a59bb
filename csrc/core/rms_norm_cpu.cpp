// CPU kernels of RMSNorm: each row is read from memory once and reduced, then revisited in cache;
// rows are cut into chunks for the caller's threads, and the row reductions keep kLanes partial
// sums, so the loops vectorize and a row's result depends on the row alone. Rows are read and
// written a block of columns at a time, through float buffers where the storage type says so
// (compute_type.h); a block is a whole number of kLanes, so the sums do not depend on it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "compute_type.h"
#include "cpu_clones.h"
#include "parallel_for.h"
#include "rms_norm.h"
#include "storage_dispatch.h"

namespace twinop {
namespace {

// 64 partial sums: four independent chains of 16-wide vector adds, enough to hide their latency.
constexpr int kLanes = 64;
static_assert(kHalfBlock % kLanes == 0, "a block boundary must not move a column to another lane");

// The lanes' sum, added pairwise in a fixed order.
template <typename C>
TWINOP_CLONED_INLINE C add_lanes(C (&lane)[kLanes]) {
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int j = 0; j < width; ++j) lane[j] += lane[j + width];
  return lane[0];
}

// 1 / sqrt(mean of the squares + eps), from the row's sum of squares.
template <typename C>
TWINOP_CLONED_INLINE C inverse_rms(C sum_of_squares, std::int64_t cols, double eps) {
  return C(1) / std::sqrt(sum_of_squares / static_cast<C>(cols) + static_cast<C>(eps));
}

// Adds products(c) for c in [0, n) into the lanes, column first + c into lane (first + c) % kLanes.
template <typename C, typename Products>
TWINOP_CLONED_INLINE void add_to_lanes(C (&lane)[kLanes], std::int64_t n, const Products& products) {
  std::int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes)
#pragma GCC unroll 64  // whole, so that the lanes stay in registers
    for (int j = 0; j < kLanes; ++j) lane[j] += products(c + j);
  for (int j = 0; c + j < n; ++j) lane[j] += products(c + j);
}

template <typename S>
TWINOP_CLONED_INLINE compute_t<S> sum_of_squares(const S* x, std::int64_t cols) {
  using C = compute_t<S>;
  const std::int64_t block = block_columns<S>(cols);
  C lane[kLanes] = {}, x_buffer[kHalfBlock];
  for (std::int64_t first = 0; first < cols; first += block) {
    const std::int64_t n = std::min(block, cols - first);
    const InputBlock<S> in(x + first, n, x_buffer);
    add_to_lanes(lane, n, [&](std::int64_t c) { return in[c] * in[c]; });
  }
  return add_lanes(lane);
}

// y = x * rstd * w over cols columns of a row, w = weight + offset in compute type.
template <typename S>
TWINOP_CLONED_INLINE void scale(const S* x, compute_t<S> rstd, const compute_t<S>* w, S* y, std::int64_t cols) {
  using C = compute_t<S>;
  const std::int64_t block = block_columns<S>(cols);
  C x_buffer[kHalfBlock], y_buffer[kHalfBlock];
  for (std::int64_t first = 0; first < cols; first += block) {
    const std::int64_t n = std::min(block, cols - first);
    const InputBlock<S> in(x + first, n, x_buffer);
    OutputBlock<S> out(y + first, y_buffer);
    for (std::int64_t c = 0; c < n; ++c) out.set(c, in[c] * rstd * w[first + c]);
    out.store(n);
  }
}

// Rows in a pipeline: while a row is scaled from cache, the next row's squares are summed from
// memory, a block at a time, so that the loop reads memory all along instead of in bursts.
template <typename S>
TWINOP_CPU_CLONES void forward_rows(const S* x, const compute_t<S>* w, S* y, compute_t<S>* rstd, std::int64_t rows,
                                    std::int64_t cols, double eps) {
  using C = compute_t<S>;
  const std::int64_t block = std::min(cols, kHalfBlock);
  C next_buffer[kHalfBlock];
  C next_sum = sum_of_squares(x, cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    const C row_rstd = inverse_rms(next_sum, cols, eps);
    if (rstd) rstd[r] = row_rstd;
    const S* row = x + r * cols;
    const S* next_row = r + 1 < rows ? row + cols : nullptr;
    C lane[kLanes] = {};
    for (std::int64_t first = 0; first < cols; first += block) {
      const std::int64_t n = std::min(block, cols - first);
      scale(row + first, row_rstd, w + first, y + r * cols + first, n);
      if (next_row) {
        const InputBlock<S> next_in(next_row + first, n, next_buffer);
        add_to_lanes(lane, n, [&](std::int64_t c) { return next_in[c] * next_in[c]; });
      }
    }
    next_sum = add_lanes(lane);
  }
}

// s = x + residual rounded to S, and the RMSNorm of s; s is read back from cache.
template <typename S>
TWINOP_CPU_CLONES void add_forward_rows(const S* x, const S* residual, const compute_t<S>* w, S* y, S* s,
                                        compute_t<S>* rstd, std::int64_t rows, std::int64_t cols, double eps) {
  using C = compute_t<S>;
  const std::int64_t block = block_columns<S>(cols);
  C x_buffer[kHalfBlock], residual_buffer[kHalfBlock], s_buffer[kHalfBlock];
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t first = r * cols; first < (r + 1) * cols; first += block) {
      const std::int64_t n = std::min(block, (r + 1) * cols - first);
      const InputBlock<S> x_in(x + first, n, x_buffer), residual_in(residual + first, n, residual_buffer);
      OutputBlock<S> s_out(s + first, s_buffer);
      for (std::int64_t c = 0; c < n; ++c) s_out.set(c, x_in[c] + residual_in[c]);
      s_out.store(n);
    }
    const C row_rstd = inverse_rms(sum_of_squares(s + r * cols, cols), cols, eps);
    rstd[r] = row_rstd;
    scale(s + r * cols, row_rstd, w, y + r * cols, cols);
  }
}

template <typename S>
TWINOP_CPU_CLONES void rstd_rows(const S* x, compute_t<S>* rstd, std::int64_t rows, std::int64_t cols, double eps) {
  for (std::int64_t r = 0; r < rows; ++r) rstd[r] = inverse_rms(sum_of_squares(x + r * cols, cols), cols, eps);
}

// dx for `rows` rows (plus ds where given), and the column sums of dy * x_hat added to
// dweight_sum (in row order). Pass 1 takes the row's dot product of g = dy * w with x; pass 2
// writes dx = rstd * (g - x_hat * mean(g * x_hat)), mean(g * x_hat) = rstd * dot / cols.
template <typename S>
TWINOP_CPU_CLONES void backward_rows(const S* dy, const S* ds, const S* x, const compute_t<S>* rstd,
                                     const compute_t<S>* w, S* dx, compute_t<S>* dweight_sum, std::int64_t rows,
                                     std::int64_t cols) {
  using C = compute_t<S>;
  const std::int64_t block = block_columns<S>(cols);
  C dy_buffer[kHalfBlock], x_buffer[kHalfBlock], ds_buffer[kHalfBlock], dx_buffer[kHalfBlock];
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t row = r * cols;
    const C row_rstd = rstd[r];
    C lane[kLanes] = {};
    for (std::int64_t first = 0; first < cols; first += block) {
      const std::int64_t n = std::min(block, cols - first);
      const InputBlock<S> dy_in(dy + row + first, n, dy_buffer), x_in(x + row + first, n, x_buffer);
      const C* w_block = w + first;
      C* dweight_block = dweight_sum + first;
      add_to_lanes(lane, n, [&](std::int64_t c) {  // the dot product's terms; dweight's on the way
        dweight_block[c] += dy_in[c] * (x_in[c] * row_rstd);
        return dy_in[c] * w_block[c] * x_in[c];
      });
    }
    const C mean_g_x_hat = row_rstd * add_lanes(lane) / static_cast<C>(cols);
    for (std::int64_t first = 0; first < cols; first += block) {
      const std::int64_t n = std::min(block, cols - first);
      const InputBlock<S> dy_in(dy + row + first, n, dy_buffer), x_in(x + row + first, n, x_buffer);
      OutputBlock<S> dx_out(dx + row + first, dx_buffer);
      const auto grad = [&](std::int64_t c) {
        return row_rstd * (dy_in[c] * w[first + c] - x_in[c] * row_rstd * mean_g_x_hat);
      };
      if (ds) {
        const InputBlock<S> ds_in(ds + row + first, n, ds_buffer);
        for (std::int64_t c = 0; c < n; ++c) dx_out.set(c, grad(c) + ds_in[c]);
      } else {
        for (std::int64_t c = 0; c < n; ++c) dx_out.set(c, grad(c));
      }
      dx_out.store(n);
    }
  }
}

// weight + offset in compute type, once per call.
template <typename C, typename P>
std::vector<C> shifted_weight(const P* weight, std::int64_t cols, double offset) {
  std::vector<C> w = row_in_compute_type<C>(weight, cols);
  for (C& value : w) value += static_cast<C>(offset);
  return w;
}

// Calls fn(S{}, P{}): the storage types of the inputs and of the weight.
template <typename Fn>
void visit_storage_and_weight(DType dtype, DType weight_dtype, Fn&& fn) {
  visit_storage(dtype, [&](auto storage_tag) {
    using S = decltype(storage_tag);
    visit_parameter_storage<S>(weight_dtype, [&](auto weight_tag) { fn(S{}, weight_tag); });
  });
}

template <typename S, typename P>
void backward(const S* dy, const S* ds, const S* x, const compute_t<S>* rstd, const P* weight, S* dx, P* dweight,
              std::int64_t rows, std::int64_t cols, double offset, const ParallelFor& parallel_for) {
  if (cols == 0) return;
  const auto w = shifted_weight<compute_t<S>>(weight, cols, offset);
  rows_with_column_sums(rows, cols, parallel_for, dweight, [&](std::int64_t first, std::int64_t count,
                                                               compute_t<P>* sums) {
    const std::int64_t at = first * cols;
    backward_rows<S>(dy + at, ds ? ds + at : nullptr, x + at, rstd + first, w.data(), dx + at, sums, count, cols);
  });
}

}  // namespace

void rms_norm_forward_cpu(const void* x, const void* weight, void* y, void* rstd, std::int64_t rows,
                          std::int64_t cols, DType dtype, DType weight_dtype, double eps, double offset,
                          const ParallelFor& parallel_for) {
  visit_storage_and_weight(dtype, weight_dtype, [&](auto storage_tag, auto weight_tag) {
    using S = decltype(storage_tag);
    using C = compute_t<S>;
    const auto w = shifted_weight<C>(static_cast<const decltype(weight_tag)*>(weight), cols, offset);
    for_row_chunks(rows, cols, parallel_for, [&](std::int64_t first, std::int64_t count) {
      forward_rows<S>(static_cast<const S*>(x) + first * cols, w.data(), static_cast<S*>(y) + first * cols,
                      rstd ? static_cast<C*>(rstd) + first : nullptr, count, cols, eps);
    });
  });
}

void add_rms_norm_forward_cpu(const void* x, const void* residual, const void* weight, void* y, void* s,
                              void* rstd, std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype,
                              double eps, double offset, const ParallelFor& parallel_for) {
  visit_storage_and_weight(dtype, weight_dtype, [&](auto storage_tag, auto weight_tag) {
    using S = decltype(storage_tag);
    using C = compute_t<S>;
    const auto w = shifted_weight<C>(static_cast<const decltype(weight_tag)*>(weight), cols, offset);
    for_row_chunks(rows, cols, parallel_for, [&](std::int64_t first, std::int64_t count) {
      const std::int64_t at = first * cols;
      add_forward_rows<S>(static_cast<const S*>(x) + at, static_cast<const S*>(residual) + at, w.data(),
                          static_cast<S*>(y) + at, static_cast<S*>(s) + at, static_cast<C*>(rstd) + first, count,
                          cols, eps);
    });
  });
}

void rms_norm_rstd_cpu(const void* x, void* rstd, std::int64_t rows, std::int64_t cols, DType dtype, double eps,
                       const ParallelFor& parallel_for) {
  visit_storage(dtype, [&](auto storage_tag) {
    using S = decltype(storage_tag);
    for_row_chunks(rows, cols, parallel_for, [&](std::int64_t first, std::int64_t count) {
      rstd_rows<S>(static_cast<const S*>(x) + first * cols, static_cast<compute_t<S>*>(rstd) + first, count, cols,
                   eps);
    });
  });
}

void rms_norm_backward_cpu(const void* dy, const void* x, const void* rstd, const void* weight, void* dx,
                           void* dweight, std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype,
                           double offset, const ParallelFor& parallel_for) {
  visit_storage_and_weight(dtype, weight_dtype, [&](auto storage_tag, auto weight_tag) {
    using S = decltype(storage_tag);
    using P = decltype(weight_tag);
    backward<S, P>(static_cast<const S*>(dy), nullptr, static_cast<const S*>(x),
                   static_cast<const compute_t<S>*>(rstd), static_cast<const P*>(weight), static_cast<S*>(dx),
                   static_cast<P*>(dweight), rows, cols, offset, parallel_for);
  });
}

void add_rms_norm_backward_cpu(const void* dy, const void* ds, const void* s, const void* rstd, const void* weight,
                               void* dx, void* dweight, std::int64_t rows, std::int64_t cols, DType dtype,
                               DType weight_dtype, double offset, const ParallelFor& parallel_for) {
  visit_storage_and_weight(dtype, weight_dtype, [&](auto storage_tag, auto weight_tag) {
    using S = decltype(storage_tag);
    using P = decltype(weight_tag);
    backward<S, P>(static_cast<const S*>(dy), static_cast<const S*>(ds), static_cast<const S*>(s),
                   static_cast<const compute_t<S>*>(rstd), static_cast<const P*>(weight), static_cast<S*>(dx),
                   static_cast<P*>(dweight), rows, cols, offset, parallel_for);
  });
}

}  // namespace twinop
