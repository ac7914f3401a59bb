// The column sums (dbias, d_bias) of a result that a tile launch computes, through partial rows
// (partial_row_sums.cuh): every column is summed in an order fixed by (rows, cols, dtype) alone.
//   1. In the main kernel, each thread sums its rows of its column group in registers, then
//      store_block_column_sums adds the block's threads through shared memory, in threadIdx.y
//      order, into one partial row per row of blocks: partial_sums[blockIdx.y][cols].
//   2. launch_sum_partial_rows adds the partial rows in a fixed order.
// The partial rows live in a workspace the framework allocates (ColumnSumPlan::workspace_bytes).
#pragma once

#include <cstddef>
#include <cstdint>

#include "compute_type.cuh"
#include "partial_row_sums.cuh"
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
  return {tiles, partial_rows, partial_rows_bytes<compute_t<S>>(partial_rows, cols)};
}

// The workspace as the plan's partial rows, checked against the plan.
template <typename S>
compute_t<S>* partial_sums_in(void* workspace, std::size_t workspace_bytes, const ColumnSumPlan& plan) {
  return workspace_as<compute_t<S>>(workspace, workspace_bytes, plan.workspace_bytes, "bias_act_cuda_workspace_bytes");
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

}  // namespace twinop::cuda_detail
