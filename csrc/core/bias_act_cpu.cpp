// CPU kernels of the fused op: one pass over the data for the forward, the backward and the
// double backward, rows cut into chunks for the caller's threads, inner loops written to vectorize.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "bias_act.h"
#include "dispatch.h"
#include "half_cpu.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// One binary for every x86-64: GCC also compiles the loops for AVX2 and AVX-512 and picks the
// best the processor has when the library loads.
#define TWINOP_CPU_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define TWINOP_CPU_CLONES
#endif

namespace twinop {
namespace {

// Storage -> compute type: half types are computed in float32, float64 in float64.
template <typename S> struct ComputeTypeOf { using type = float; };
template <> struct ComputeTypeOf<double> { using type = double; };
template <typename S> using compute_t = typename ComputeTypeOf<S>::type;

inline float to_compute(float v) { return v; }
inline double to_compute(double v) { return v; }
inline float to_compute(cpu::Float16 v) { return cpu::to_float(v); }
inline float to_compute(cpu::BFloat16 v) { return cpu::to_float(v); }

template <typename S> S from_compute(compute_t<S> v);
template <> inline float from_compute<float>(float v) { return v; }
template <> inline double from_compute<double>(double v) { return v; }
template <> inline cpu::Float16 from_compute<cpu::Float16>(float v) { return cpu::to_float16(v); }
template <> inline cpu::BFloat16 from_compute<cpu::BFloat16>(float v) { return cpu::to_bfloat16(v); }

// Whole rows per chunk, cut from the shape alone (so dbias's summation order is too): chunks
// of at least kMinChunkElements pay for a thread hand-off; at most kMaxChunks keeps the
// backward's per-chunk dbias sums small.
constexpr std::int64_t kMinChunkElements = 1 << 15;
constexpr std::int64_t kMaxChunks = 64;

struct RowChunks {
  std::int64_t count;
  std::int64_t rows_per_chunk;
};

RowChunks plan_chunks(std::int64_t rows, std::int64_t cols) {
  const std::int64_t wanted =
      std::min(std::clamp<std::int64_t>(rows * cols / kMinChunkElements, 1, kMaxChunks), rows);
  const std::int64_t rows_per_chunk = (rows + wanted - 1) / wanted;
  return {(rows + rows_per_chunk - 1) / rows_per_chunk, rows_per_chunk};  // rows > 0
}

void run_chunks(const ParallelFor& parallel_for, std::int64_t chunks, const ChunkBody& body) {
  if (parallel_for && chunks > 1) {
    parallel_for(chunks, body);
  } else {
    body(0, chunks);
  }
}

// A row vector (bias, g_bias) in compute type, converted once per call instead of once per element.
template <typename S>
std::vector<compute_t<S>> row_in_compute_type(const S* row, std::int64_t cols) {
  std::vector<compute_t<S>> out(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) out[c] = to_compute(row[c]);
  return out;
}

template <typename S, typename Act>
TWINOP_CPU_CLONES void forward_rows(const S* x, const compute_t<S>* b, S* y, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const S* x_row = x + r * cols;
    S* y_row = y + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) y_row[c] = from_compute<S>(Act::value(to_compute(x_row[c]) + b[c]));
  }
}

// dx for `rows` rows, and their column sums added to dbias_sum (in row order).
template <typename S, typename Act>
TWINOP_CPU_CLONES void backward_rows(const S* dy, const S* x, const compute_t<S>* b, S* dx,
                                     compute_t<S>* dbias_sum, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t offset = r * cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      const compute_t<S> grad = to_compute(dy[offset + c]) * Act::derivative(to_compute(x[offset + c]) + b[c]);
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
      const compute_t<S> grad_x = grad * to_compute(dy[offset + c]) * Act::second_derivative(v);
      d_dy[offset + c] = from_compute<S>(grad * Act::derivative(v));
      d_x[offset + c] = from_compute<S>(grad_x);
      d_bias_sum[c] += grad_x;
    }
  }
}

template <typename S, typename Act>
void forward(const S* x, const S* bias, S* y, std::int64_t rows, std::int64_t cols, const ParallelFor& parallel_for) {
  if (rows == 0 || cols == 0) return;
  const auto b = row_in_compute_type(bias, cols);
  const RowChunks chunks = plan_chunks(rows, cols);
  run_chunks(parallel_for, chunks.count, [&](std::int64_t begin, std::int64_t end) {
    const std::int64_t first_row = begin * chunks.rows_per_chunk;
    const std::int64_t row_count = std::min(end * chunks.rows_per_chunk, rows) - first_row;
    forward_rows<S, Act>(x + first_row * cols, b.data(), y + first_row * cols, row_count, cols);
  });
}

// Runs rows_fn(first_row, row_count, sums) over chunks of rows, on the caller's threads; each
// chunk adds its rows' column sums into its own row of partial sums, and these are added in
// chunk order into column_sums (rounded to S): the same result for any thread count.
template <typename S, typename RowsFn>
void rows_with_column_sums(std::int64_t rows, std::int64_t cols, const ParallelFor& parallel_for, S* column_sums,
                           const RowsFn& rows_fn) {
  std::vector<compute_t<S>> total(static_cast<std::size_t>(cols), compute_t<S>(0));
  if (rows > 0) {
    const RowChunks chunks = plan_chunks(rows, cols);
    std::vector<compute_t<S>> chunk_sums(static_cast<std::size_t>(chunks.count * cols), compute_t<S>(0));
    run_chunks(parallel_for, chunks.count, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t chunk = begin; chunk < end; ++chunk) {
        const std::int64_t first_row = chunk * chunks.rows_per_chunk;
        const std::int64_t row_count = std::min(first_row + chunks.rows_per_chunk, rows) - first_row;
        rows_fn(first_row, row_count, chunk_sums.data() + chunk * cols);
      }
    });
    for (std::int64_t chunk = 0; chunk < chunks.count; ++chunk)
      for (std::int64_t c = 0; c < cols; ++c) total[c] += chunk_sums[chunk * cols + c];
  }
  for (std::int64_t c = 0; c < cols; ++c) column_sums[c] = from_compute<S>(total[c]);
}

template <typename S, typename Act>
void backward(const S* dy, const S* x, const S* bias, S* dx, S* dbias, std::int64_t rows, std::int64_t cols,
              const ParallelFor& parallel_for) {
  if (cols == 0) return;
  const auto b = row_in_compute_type(bias, cols);
  rows_with_column_sums(rows, cols, parallel_for, dbias, [&](std::int64_t first, std::int64_t count, compute_t<S>* sums) {
    const std::int64_t offset = first * cols;
    backward_rows<S, Act>(dy + offset, x + offset, b.data(), dx + offset, sums, count, cols);
  });
}

template <typename S, typename Act>
void double_backward(const S* g, const S* g_bias, const S* dy, const S* x, const S* bias, S* d_dy, S* d_x,
                     S* d_bias, std::int64_t rows, std::int64_t cols, const ParallelFor& parallel_for) {
  if (cols == 0) return;
  const auto g_b = row_in_compute_type(g_bias, cols);
  const auto b = row_in_compute_type(bias, cols);
  rows_with_column_sums(rows, cols, parallel_for, d_bias, [&](std::int64_t first, std::int64_t count, compute_t<S>* sums) {
    const std::int64_t offset = first * cols;
    double_backward_rows<S, Act>(g + offset, g_b.data(), dy + offset, x + offset, b.data(), d_dy + offset,
                                 d_x + offset, sums, count, cols);
  });
}

// Calls fn(S{}) with the storage type that `dtype` names.
template <typename Fn>
void visit_storage(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{});
    case DType::kFloat64: return fn(double{});
    case DType::kFloat16: return fn(cpu::Float16{});
    case DType::kBFloat16: return fn(cpu::BFloat16{});
  }
  throw std::invalid_argument("twinop: dtype enum out of range");
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
