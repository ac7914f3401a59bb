// RMSNorm's backward on the GPU, and that of its fused residual add, in one pass over dy and x
// (and ds): with g = dy * (weight + offset) and x_hat = x * rstd,
//   dx = rstd * (g - x_hat * mean(g * x_hat)) (+ ds),  mean(g * x_hat) = rstd * (sum of g * x) / cols,
//   dweight = column sums of dy * x_hat,
// each row held in registers between its dot product and dx (row_launch.cuh). dweight is summed
// with no atomics (partial_row_sums.cuh): each thread adds its columns over its rows in registers,
// each block writes one partial row, then the partial rows are added in order.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "compute_type.cuh"
#include "cuda_check.h"
#include "partial_row_sums.cuh"
#include "rms_norm_cuda.h"
#include "rms_norm_plan.cuh"
#include "rms_norm_rows.cuh"
#include "row_launch.cuh"
#include "row_reduce.cuh"
#include "storage_dispatch.cuh"
#include "vector_io.cuh"

namespace twinop {
namespace {

using cuda_detail::compute_t;
using cuda_detail::Group;
using cuda_detail::kBackwardMaxGroups;
using cuda_detail::kBackwardMaxRowThreads;
using cuda_detail::kGroupWidth;
using cuda_detail::RowPlan;
using cuda_detail::SliceColumns;
using cuda_detail::SliceSum;

constexpr int K = kBackwardMaxGroups;

// The thread's share of a row slice's sum of g * x: its groups in order, each element in order.
template <bool kVectors, typename S, typename P>
__device__ __forceinline__ compute_t<S> thread_dot(const Group<S> (&dy)[K], const Group<S> (&x)[K],
                                                   const P* __restrict__ weight, compute_t<S> offset,
                                                   const SliceColumns& mine) {
  compute_t<S> dot = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    if (k >= mine.groups) break;
    compute_t<S> w[kGroupWidth<S>];
    cuda_detail::load_shifted_weight<kVectors, S>(weight, mine, k, offset, w);
#pragma unroll
    for (int j = 0; j < kGroupWidth<S>; ++j) {  // zeros past the row's end: dot unchanged
      const compute_t<S> g = cuda_detail::mul_rounded(cuda_detail::to_compute(dy[k].v[j]), w[j]);
      dot = cuda_detail::fma_rounded(g, cuda_detail::to_compute(x[k].v[j]), dot);
    }
  }
  return dot;
}

// The block's column sums into its partial row, partial_sums[blockIdx.y]: each column added over
// threadIdx.y in order (the rows the block works on at once), through shared memory, k by k.
// Every thread of the block calls it.
template <typename S>
__device__ __forceinline__ void store_block_partial_row(const compute_t<S> (&sums)[K][kGroupWidth<S>],
                                                        const RowPlan& plan, compute_t<S>* __restrict__ partial_sums,
                                                        std::int64_t cols) {
  using C = compute_t<S>;
  constexpr int W = kGroupWidth<S>;
  __shared__ C tile[kBackwardMaxRowThreads * W];  // tile[y][x * W + j]: thread (x, y)'s sum of element j
  const int span = blockDim.x * W;                // columns of the k-th groups of the slice's threads
  const int threads = blockDim.x * blockDim.y;
  const SliceColumns first_thread = cuda_detail::slice_columns(plan, cols, blockIdx.x, 0, W);
  C* __restrict__ out = partial_sums + std::int64_t(blockIdx.y) * cols + first_thread.first;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    if (k >= first_thread.groups) break;  // alike in every thread
    __syncthreads();                      // the last k's readers are done
#pragma unroll
    for (int j = 0; j < W; ++j) tile[threadIdx.y * span + threadIdx.x * W + j] = sums[k][j];
    __syncthreads();
    for (int t = threadIdx.y * blockDim.x + threadIdx.x; t < span; t += threads) {
      const int column = k * span + t;  // from the slice's first column
      if (column >= first_thread.left) break;
      C total = 0;
      for (unsigned y = 0; y < blockDim.y; ++y) total += tile[y * span + t];
      out[column] = total;
    }
  }
}

// One slice of a row a block (blockIdx.x: the slice), rows a multiple of blockDim.y apart, as the
// forward's layout. The row's sum of g * x comes from its block (kOneSlice), its cluster
// (kCluster), or the slice sums rms_norm_slice_dots_kernel wrote (kWorkspace).
template <typename S, typename P, bool kAdd, bool kVectors>
__global__ void __launch_bounds__(kBackwardMaxRowThreads, 1)
rms_norm_backward_kernel(const S* __restrict__ dy, const S* __restrict__ ds, const S* __restrict__ x,
                         const compute_t<S>* __restrict__ rstd, const P* __restrict__ weight, S* __restrict__ dx,
                         compute_t<S>* __restrict__ partial_sums, const compute_t<S>* __restrict__ slice_dots,
                         std::int64_t rows, std::int64_t cols, RowPlan plan, SliceSum slice_sum,
                         compute_t<S> offset) {
  using C = compute_t<S>;
  constexpr int W = kGroupWidth<S>;
  __shared__ C warp_sums[cuda_detail::kMaxWarps];
  __shared__ C exchange[2];
  const SliceColumns mine = cuda_detail::slice_columns(plan, cols, blockIdx.x, threadIdx.x, W);
  C column_sums[K][W] = {};  // dweight's: this thread's columns over its rows, in row order
  const std::int64_t row_step = std::int64_t(gridDim.y) * blockDim.y;
  int parity = 0;
  for (std::int64_t first = std::int64_t(blockIdx.y) * blockDim.y; first < rows; first += row_step, parity ^= 1) {
    const std::int64_t r = first + threadIdx.y;
    const bool active = r < rows;  // the block's last rows may run past the matrix: zeros, no stores
    Group<S> dy_in[K] = {}, x_in[K] = {};
    C row_rstd = 0;
    if (active) {
      cuda_detail::load_row_groups<kVectors>(dy + r * cols, mine, dy_in);
      cuda_detail::load_row_groups<kVectors>(x + r * cols, mine, x_in);
      row_rstd = rstd[r];
    }
    C dot = 0;
    if (slice_sum == SliceSum::kWorkspace) {
      for (int s = 0; active && s < plan.slices; ++s) dot += slice_dots[r * plan.slices + s];
    } else {
      dot = cuda_detail::row_threads_sum(thread_dot<kVectors>(dy_in, x_in, weight, offset, mine), warp_sums);
      cuda_detail::keep_in_storage_type(dy_in);
      cuda_detail::keep_in_storage_type(x_in);
      if (slice_sum == SliceSum::kCluster) dot = cuda_detail::cluster_slices_sum(dot, exchange, parity);
    }
    if (!active) continue;
    const C mean = row_rstd * dot / static_cast<C>(cols);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      if (k >= mine.groups) break;
      C w[W];
      cuda_detail::load_shifted_weight<kVectors, S>(weight, mine, k, offset, w);
      Group<S> out;
      if constexpr (kAdd) out = cuda_detail::load_row_group<kVectors>(ds + r * cols, mine, k);
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const C d = cuda_detail::to_compute(dy_in[k].v[j]);
        const C x_hat = cuda_detail::mul_rounded(cuda_detail::to_compute(x_in[k].v[j]), row_rstd);
        const C g = cuda_detail::mul_rounded(d, w[j]);
        C grad = cuda_detail::mul_rounded(row_rstd, cuda_detail::fma_rounded(-x_hat, mean, g));
        if constexpr (kAdd) grad += cuda_detail::to_compute(out.v[j]);
        out.v[j] = cuda_detail::from_compute<S>(grad);
        column_sums[k][j] = cuda_detail::fma_rounded(d, x_hat, column_sums[k][j]);
      }
      dy_in[k] = out;  // dx, in the place of dy
    }
    cuda_detail::store_row_groups<kVectors>(dx + r * cols, mine, dy_in);
  }
  if (slice_sum == SliceSum::kCluster) cuda_detail::cluster_rows_done();
  store_block_partial_row<S>(column_sums, plan, partial_sums, cols);
}

// Where a row has several slices and no cluster holds them: each row's slice sums of g * x,
// slice_dots[row][slice], for rms_norm_backward_kernel's kWorkspace path (the sums a cluster adds:
// the same threads, the same order).
template <typename S, typename P, bool kVectors>
__global__ void __launch_bounds__(kBackwardMaxRowThreads, 1)
rms_norm_slice_dots_kernel(const S* __restrict__ dy, const S* __restrict__ x, const P* __restrict__ weight,
                           compute_t<S>* __restrict__ slice_dots, std::int64_t rows, std::int64_t cols, RowPlan plan,
                           compute_t<S> offset) {
  __shared__ compute_t<S> warp_sums[cuda_detail::kMaxWarps];
  const SliceColumns mine = cuda_detail::slice_columns(plan, cols, blockIdx.x, threadIdx.x, kGroupWidth<S>);
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y) {  // one row at a time: blockDim.y is 1
    Group<S> dy_in[K], x_in[K];
    cuda_detail::load_row_groups<kVectors>(dy + r * cols, mine, dy_in);
    cuda_detail::load_row_groups<kVectors>(x + r * cols, mine, x_in);
    const compute_t<S> dot =
        cuda_detail::row_threads_sum(thread_dot<kVectors>(dy_in, x_in, weight, offset, mine), warp_sums);
    if (threadIdx.x == 0) slice_dots[r * plan.slices + blockIdx.x] = dot;
  }
}

template <typename S, typename P, bool kAdd, bool kVectors>
void launch_backward(const S* dy, const S* ds, const S* x, const compute_t<S>* rstd, const P* weight, S* dx,
                     P* dweight, void* workspace, std::size_t workspace_bytes, std::int64_t rows, std::int64_t cols,
                     double offset, cudaStream_t stream) {
  using C = compute_t<S>;
  static_assert(std::is_same_v<C, compute_t<P>>, "dweight's partial rows are in the weight's compute type");
  const cuda_detail::RmsNormBackwardPlan plan = cuda_detail::plan_rms_norm_backward<C>(rows, cols, kGroupWidth<S>);
  const RowPlan& layout = plan.rows;
  C* partial_sums = cuda_detail::workspace_as<C>(workspace, workspace_bytes, plan.workspace_bytes,
                                                 "rms_norm_cuda_workspace_bytes");
  C* slice_dots = partial_sums + std::int64_t(layout.row_blocks) * cols;  // used where slices > 1

  const auto kernel = rms_norm_backward_kernel<S, P, kAdd, kVectors>;
  const dim3 grid(layout.slices, layout.row_blocks), block(layout.row_threads, layout.block_rows);
  cudaLaunchAttribute cluster_attribute{};
  cudaLaunchConfig_t config = cuda_detail::row_launch_config(grid, block, layout.slices, stream, cluster_attribute);
  SliceSum slice_sum = SliceSum::kOneSlice;
  if (layout.slices > 1 && cuda_detail::clusters_fit(kernel, config, layout.slices)) {
    slice_sum = SliceSum::kCluster;
  } else if (layout.slices > 1) {
    slice_sum = SliceSum::kWorkspace;
    config = cuda_detail::row_launch_config(grid, block, 1, stream, cluster_attribute);
    cuda_detail::launch_rows(config, rms_norm_slice_dots_kernel<S, P, kVectors>, dy, x, weight, slice_dots, rows,
                             cols, layout, static_cast<C>(offset));
  }
  cuda_detail::launch_rows(config, kernel, dy, ds, x, rstd, weight, dx, partial_sums, slice_dots, rows, cols, layout,
                           slice_sum, static_cast<C>(offset));
  cuda_detail::launch_sum_partial_rows<P>(partial_sums, dweight, layout.row_blocks, cols, stream);
}

template <bool kAdd>
void backward(const void* dy, const void* ds, const void* x, const void* rstd, const void* weight, void* dx,
              void* dweight, void* workspace, std::size_t workspace_bytes, std::int64_t rows, std::int64_t cols,
              DType dtype, DType weight_dtype, double offset, cudaStream_t stream) {
  if (cols == 0) return;
  cuda_detail::visit_input_and_parameter_storage(dtype, weight_dtype, [&](auto storage_tag, auto weight_tag) {
    using S = decltype(storage_tag);
    using P = decltype(weight_tag);
    if (rows == 0) {  // nothing to differentiate: dweight is a sum of no terms
      TWINOP_CUDA_CHECK(cudaMemsetAsync(dweight, 0, static_cast<std::size_t>(cols) * sizeof(P), stream));
      return;
    }
    const auto launch = cuda_detail::rows_are_vector_aligned<S>(cols, dy, ds, x, weight, dx)
                            ? launch_backward<S, P, kAdd, true>
                            : launch_backward<S, P, kAdd, false>;
    launch(static_cast<const S*>(dy), static_cast<const S*>(ds), static_cast<const S*>(x),
           static_cast<const compute_t<S>*>(rstd), static_cast<const P*>(weight), static_cast<S*>(dx),
           static_cast<P*>(dweight), workspace, workspace_bytes, rows, cols, offset, stream);
  });
}

}  // namespace

std::size_t rms_norm_cuda_workspace_bytes(std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype) {
  if (rows == 0 || cols == 0) return 0;
  std::size_t bytes = 0;
  cuda_detail::visit_input_and_parameter_storage(dtype, weight_dtype, [&](auto storage_tag, auto) {
    using S = decltype(storage_tag);
    bytes = cuda_detail::plan_rms_norm_backward<compute_t<S>>(rows, cols, kGroupWidth<S>).workspace_bytes;
  });
  return bytes;
}

void rms_norm_backward_cuda(const void* dy, const void* x, const void* rstd, const void* weight, void* dx,
                            void* dweight, void* workspace, std::size_t workspace_bytes, std::int64_t rows,
                            std::int64_t cols, DType dtype, DType weight_dtype, double offset, cudaStream_t stream) {
  backward<false>(dy, nullptr, x, rstd, weight, dx, dweight, workspace, workspace_bytes, rows, cols, dtype,
                  weight_dtype, offset, stream);
}

void add_rms_norm_backward_cuda(const void* dy, const void* ds, const void* s, const void* rstd, const void* weight,
                                void* dx, void* dweight, void* workspace, std::size_t workspace_bytes,
                                std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype, double offset,
                                cudaStream_t stream) {
  backward<true>(dy, ds, s, rstd, weight, dx, dweight, workspace, workspace_bytes, rows, cols, dtype, weight_dtype,
                 offset, stream);
}

}  // namespace twinop
