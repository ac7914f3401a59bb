// CPU kernels of RMSNorm: each row is read from memory once and reduced, then revisited in cache;
// rows are cut into chunks for the caller's threads, and the row reductions keep kLanes partial
// sums, so the loops vectorize and a row's result depends on the row alone.
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

constexpr int kLanes = 16;

// The lanes' sum, added pairwise in a fixed order.
template <typename C>
inline C add_lanes(C (&lane)[kLanes]) {
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int j = 0; j < width; ++j) lane[j] += lane[j + width];
  return lane[0];
}

// 1 / sqrt(mean of the squares + eps), from the row's sum of squares.
template <typename C>
inline C inverse_rms(C sum_of_squares, std::int64_t cols, double eps) {
  return C(1) / std::sqrt(sum_of_squares / static_cast<C>(cols) + static_cast<C>(eps));
}

template <typename S>
inline compute_t<S> sum_of_squares(const S* x, std::int64_t cols) {
  using C = compute_t<S>;
  C lane[kLanes] = {};
  std::int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const C v = to_compute(x[c + j]);
      lane[j] += v * v;
    }
  }
  for (int j = 0; c + j < cols; ++j) {
    const C v = to_compute(x[c + j]);
    lane[j] += v * v;
  }
  return add_lanes(lane);
}

// y = x * rstd * w for one row, w = weight + offset in compute type.
template <typename S>
inline void scale_row(const S* x, compute_t<S> rstd, const compute_t<S>* w, S* y, std::int64_t cols) {
  for (std::int64_t c = 0; c < cols; ++c) y[c] = from_compute<S>(to_compute(x[c]) * rstd * w[c]);
}

template <typename S>
TWINOP_CPU_CLONES void forward_rows(const S* x, const compute_t<S>* w, S* y, compute_t<S>* rstd, std::int64_t rows,
                                    std::int64_t cols, double eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const compute_t<S> row_rstd = inverse_rms(sum_of_squares(x + r * cols, cols), cols, eps);
    if (rstd) rstd[r] = row_rstd;
    scale_row(x + r * cols, row_rstd, w, y + r * cols, cols);
  }
}

// s = x + residual rounded to S, and the RMSNorm of s; s is read back from cache.
template <typename S>
TWINOP_CPU_CLONES void add_forward_rows(const S* x, const S* residual, const compute_t<S>* w, S* y, S* s,
                                        compute_t<S>* rstd, std::int64_t rows, std::int64_t cols, double eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t offset = r * cols;
    for (std::int64_t c = 0; c < cols; ++c)
      s[offset + c] = from_compute<S>(to_compute(x[offset + c]) + to_compute(residual[offset + c]));
    const compute_t<S> row_rstd = inverse_rms(sum_of_squares(s + offset, cols), cols, eps);
    rstd[r] = row_rstd;
    scale_row(s + offset, row_rstd, w, y + offset, cols);
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
  for (std::int64_t r = 0; r < rows; ++r) {
    const S* dy_row = dy + r * cols;
    const S* x_row = x + r * cols;
    const C row_rstd = rstd[r];
    C lane[kLanes] = {};
    std::int64_t c = 0;
    for (; c + kLanes <= cols; c += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const C d = to_compute(dy_row[c + j]), v = to_compute(x_row[c + j]);
        lane[j] += d * w[c + j] * v;
        dweight_sum[c + j] += d * (v * row_rstd);
      }
    }
    for (int j = 0; c + j < cols; ++j) {
      const C d = to_compute(dy_row[c + j]), v = to_compute(x_row[c + j]);
      lane[j] += d * w[c + j] * v;
      dweight_sum[c + j] += d * (v * row_rstd);
    }
    const C mean_g_x_hat = row_rstd * add_lanes(lane) / static_cast<C>(cols);
    S* dx_row = dx + r * cols;
    const S* ds_row = ds ? ds + r * cols : nullptr;
    for (c = 0; c < cols; ++c) {
      const C v = to_compute(x_row[c]);
      const C grad = row_rstd * (to_compute(dy_row[c]) * w[c] - v * row_rstd * mean_g_x_hat);
      dx_row[c] = from_compute<S>(ds_row ? grad + to_compute(ds_row[c]) : grad);
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
