// CPU kernels of the fused op: one pass over the data for the forward and for the backward,
// rows cut into chunks for the caller's threads, inner loops written to vectorize.
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

// The bias in compute type, converted once per call instead of once per element.
template <typename S>
std::vector<compute_t<S>> bias_in_compute_type(const S* bias, std::int64_t cols) {
  std::vector<compute_t<S>> out(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) out[c] = to_compute(bias[c]);
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

template <typename S, typename Act>
void forward(const S* x, const S* bias, S* y, std::int64_t rows, std::int64_t cols, const ParallelFor& parallel_for) {
  if (rows == 0 || cols == 0) return;
  const auto b = bias_in_compute_type(bias, cols);
  const RowChunks chunks = plan_chunks(rows, cols);
  run_chunks(parallel_for, chunks.count, [&](std::int64_t begin, std::int64_t end) {
    const std::int64_t first_row = begin * chunks.rows_per_chunk;
    const std::int64_t row_count = std::min(end * chunks.rows_per_chunk, rows) - first_row;
    forward_rows<S, Act>(x + first_row * cols, b.data(), y + first_row * cols, row_count, cols);
  });
}

template <typename S, typename Act>
void backward(const S* dy, const S* x, const S* bias, S* dx, S* dbias, std::int64_t rows, std::int64_t cols,
              const ParallelFor& parallel_for) {
  if (cols == 0) return;
  std::vector<compute_t<S>> dbias_sum(static_cast<std::size_t>(cols), compute_t<S>(0));
  if (rows > 0) {
    const auto b = bias_in_compute_type(bias, cols);
    const RowChunks chunks = plan_chunks(rows, cols);
    // One row of partial sums per chunk, added up in chunk order afterwards.
    std::vector<compute_t<S>> chunk_sums(static_cast<std::size_t>(chunks.count * cols), compute_t<S>(0));
    run_chunks(parallel_for, chunks.count, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t chunk = begin; chunk < end; ++chunk) {
        const std::int64_t first_row = chunk * chunks.rows_per_chunk;
        const std::int64_t row_count = std::min(first_row + chunks.rows_per_chunk, rows) - first_row;
        backward_rows<S, Act>(dy + first_row * cols, x + first_row * cols, b.data(), dx + first_row * cols,
                              chunk_sums.data() + chunk * cols, row_count, cols);
      }
    });
    for (std::int64_t chunk = 0; chunk < chunks.count; ++chunk)
      for (std::int64_t c = 0; c < cols; ++c) dbias_sum[c] += chunk_sums[chunk * cols + c];
  }
  for (std::int64_t c = 0; c < cols; ++c) dbias[c] = from_compute<S>(dbias_sum[c]);
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

}  // namespace twinop
