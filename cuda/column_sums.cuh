// Deterministic column sums (dbias, d_bias) of a result that a tile launch computes, with no
// atomics: every column is summed in an order fixed by (rows, cols, dtype) alone.
//   1. In the main kernel, each thread sums its rows of its column group in registers, then
//      store_block_column_sums adds the block's threads through shared memory, in threadIdx.y
//      order, into one partial row per row of blocks: partial_sums[blockIdx.y][cols].
//   2. sum_partial_rows_kernel adds the partial rows in a fixed order.
// The partial rows live in a workspace the framework allocates (ColumnSumPlan::workspace_bytes).
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "compute_type.cuh"
#include "cuda_check.h"
#include "tile_launch.cuh"
#include "vector_io.cuh"

namespace twinop::cuda_detail {

// The one plan behind both the workspace size and the launch, so they always agree.
struct ColumnSumPlan {
  TileLaunch tiles;
  std::int64_t partial_rows;  // one per row of blocks
  std::size_t workspace_bytes;
};

template <typename S>
ColumnSumPlan plan_column_sums(std::int64_t rows, std::int64_t cols) {
  const TileLaunch tiles = plan_tiles(rows, cols, kGroupWidth<S>);
  const std::int64_t partial_rows = tiles.grid.y;
  return {tiles, partial_rows, static_cast<std::size_t>(partial_rows * cols) * sizeof(compute_t<S>)};
}

// The workspace as partial-sum rows, after checking that the caller's buffer is the one the
// plan needs: sized for this shape (not, say, for a smaller one) and aligned for compute_t<S>.
template <typename S>
compute_t<S>* partial_sums_in(void* workspace, std::size_t workspace_bytes, const ColumnSumPlan& plan) {
  if (workspace_bytes < plan.workspace_bytes) {
    throw std::invalid_argument("twinop: the workspace has " + std::to_string(workspace_bytes) +
                                " bytes; these sizes need " + std::to_string(plan.workspace_bytes) +
                                " (bias_act_cuda_workspace_bytes)");
  }
  if (workspace == nullptr || reinterpret_cast<std::uintptr_t>(workspace) % alignof(compute_t<S>) != 0) {
    throw std::invalid_argument("twinop: the workspace must be a device buffer aligned to 8 bytes");
  }
  return static_cast<compute_t<S>*>(workspace);
}

// Step 1's block reduction: element j of the thread's group (vector_io.cuh) holds sum[j] for
// column group.column(j); the block's column sums go to partial_sums[blockIdx.y]. Each column is
// added over threadIdx.y in order, whichever thread of its row of threads held it. Every thread
// must call it.
template <typename S>
__device__ __forceinline__ void store_block_column_sums(const compute_t<S> (&sum)[kGroupWidth<S>],
                                                        const ThreadColumns& group,
                                                        compute_t<S>* __restrict__ partial_sums,
                                                        std::int64_t cols) {
  using C = compute_t<S>;
  constexpr int W = kGroupWidth<S>;
  // The block's columns must fit one reduction pass of its threads (block_x <= 32).
  static_assert(32 * W <= kThreadsPerBlock, "a block's columns exceed its threads");
  __shared__ C tile[kThreadsPerBlock * W];  // tile[y][c] = the sum of thread row y in the span's column c
  const int tile_cols = blockDim.x * W;
  const std::int64_t span_start = std::int64_t(blockIdx.x) * tile_cols;
#pragma unroll
  for (int j = 0; j < W; ++j) {
    if (j < group.count) tile[threadIdx.y * tile_cols + static_cast<int>(group.column(j) - span_start)] = sum[j];
  }
  __syncthreads();

  const int t = threadIdx.y * blockDim.x + threadIdx.x;  // one thread per column of the span
  const std::int64_t out_col = span_start + t;
  if (t < tile_cols && out_col < cols) {
    C block_sum = 0;
    for (unsigned y = 0; y < blockDim.y; ++y) block_sum += tile[y * tile_cols + t];
    partial_sums[std::int64_t(blockIdx.y) * cols + out_col] = block_sum;
  }
}

// A block sums kSumColumns columns: lane y (threadIdx.y) adds partial rows y, y + kSumLanes, ...
// in order, then lane 0 adds the lanes' sums in order. Lanes keep each serial chain of loads
// short when there are many partial rows (narrow matrices).
inline constexpr int kSumColumns = 32;
inline constexpr int kSumLanes = kThreadsPerBlock / kSumColumns;

template <typename S>
__global__ void __launch_bounds__(kThreadsPerBlock)
sum_partial_rows_kernel(const compute_t<S>* __restrict__ partial_sums, S* __restrict__ out,
                        std::int64_t partial_rows, std::int64_t cols) {
  using C = compute_t<S>;
  __shared__ C lane_sums[kSumLanes][kSumColumns];
  const std::int64_t col = std::int64_t(blockIdx.x) * kSumColumns + threadIdx.x;
  C sum = 0;
  if (col < cols) {
#pragma unroll 4
    for (std::int64_t r = threadIdx.y; r < partial_rows; r += kSumLanes) sum += partial_sums[r * cols + col];
  }
  lane_sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    C total = 0;
    for (int lane = 0; lane < kSumLanes; ++lane) total += lane_sums[lane][threadIdx.x];
    out[col] = from_compute<S>(total);
  }
}

// Step 2: out[c] = the sum of the plan's partial rows in column c, rounded to S.
template <typename S>
void launch_sum_partial_rows(const compute_t<S>* partial_sums, S* out, const ColumnSumPlan& plan,
                             std::int64_t cols, cudaStream_t stream) {
  const std::int64_t blocks = ceil_div(cols, kSumColumns);
  if (blocks > INT_MAX) throw std::invalid_argument("twinop: too many columns for one CUDA grid");
  sum_partial_rows_kernel<S><<<static_cast<unsigned>(blocks), dim3(kSumColumns, kSumLanes), 0, stream>>>(
      partial_sums, out, plan.partial_rows, cols);
  TWINOP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace twinop::cuda_detail
