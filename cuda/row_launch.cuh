// The thread layout of the row-reduction kernels (RMSNorm): a row is cut into slices of whole
// 16-byte groups of columns, one block per slice; threadIdx.x runs across a slice, threadIdx.y over
// rows a block works on at once (several where rows are narrow). A thread owns groups
// slice_start + k * row_threads + threadIdx.x (k < groups_per_thread): a warp's k-th loads are
// contiguous, and the thread's columns are the same in every row it walks, so its share of a column
// sum (dweight) stays in registers.
//
// Which thread holds which element depends on the column alone, never on the address: where every
// row of every tensor starts on a 16-byte boundary the kernels move vectors, elsewhere elements,
// and both sum the same elements in the same order, so results are bit-identical for any
// alignment. The plan depends on (rows, cols, dtype) alone, never on the device, and so do the
// row sums' order (each thread's elements in k, then element order; the row's threads in a fixed
// tree; the slices in order) and the column sums' (a block's rows in order, its threadIdx.y in
// order, then the blocks' partial rows in order).
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>

#include "tile_launch.cuh"

namespace twinop::cuda_detail {

// Threads a block has where a row slice takes fewer: rows narrower than that share a block.
inline constexpr int kRowBlockThreads = 256;
// Fewest threads across a row that has that many groups: a warp's load then covers at least 64
// contiguous bytes of each of its rows.
inline constexpr int kMinRowThreads = 4;

struct RowPlan {
  int row_threads;            // threads across a slice (blockDim.x), a power of 2
  int block_rows;             // rows a block works on at once (blockDim.y); 1 where a row has several slices
  int groups_per_thread;      // groups a thread holds of each row slice, at most the kernel's max_groups
  std::int64_t slice_groups;  // groups in a slice, row_threads * groups_per_thread (fewer in the last)
  std::int64_t groups;        // groups in a row: the columns in vectors of group_width, the last one short
  int slices;                 // slices a row is cut into: blocks across it
  int row_blocks;             // blocks down the rows (gridDim.y); a block walks rows block_rows * row_blocks apart
};

// max_groups: what a thread of the kernel holds in registers; max_row_threads: its largest block;
// target_blocks: about how many blocks the grid aims for (each walks its rows). rows, cols > 0.
inline RowPlan plan_rows(std::int64_t rows, std::int64_t cols, int group_width, int max_groups, int max_row_threads,
                         int target_blocks) {
  RowPlan plan{};
  plan.groups = ceil_div(cols, group_width);
  // As few threads across a row as hold it (most registers used, least reduction), but a few
  // wherever the row has the groups for them.
  int row_threads = 1;
  while (row_threads < max_row_threads &&
         (std::int64_t(row_threads) * max_groups < plan.groups ||
          (row_threads < kMinRowThreads && row_threads < plan.groups))) {
    row_threads *= 2;
  }
  const std::int64_t slices = ceil_div(plan.groups, std::int64_t(row_threads) * max_groups);
  if (slices > INT_MAX) throw std::invalid_argument("twinop: too many columns for one CUDA grid");
  plan.row_threads = row_threads;
  plan.slices = static_cast<int>(slices);
  plan.groups_per_thread = static_cast<int>(ceil_div(ceil_div(plan.groups, slices), row_threads));
  plan.slice_groups = std::int64_t(row_threads) * plan.groups_per_thread;
  plan.block_rows = slices > 1 ? 1 : std::max(1, kRowBlockThreads / row_threads);
  plan.row_blocks = static_cast<int>(std::clamp<std::int64_t>(ceil_div(target_blocks, slices), 1,
                                                              ceil_div(rows, plan.block_rows)));
  return plan;
}

// A thread's columns in each row of its slice: groups k < groups, the k-th at column
// first + k * stride * group_width. Offsets from first fit 32 bits (a slice is at most
// max_row_threads * max_groups groups), so a kernel keeps one 64-bit address a row.
struct SliceColumns {
  std::int64_t first;  // first column of its first group
  int stride;          // groups from one of its groups to the next: row_threads
  int groups;          // groups it holds, at most groups_per_thread (fewer in a row's last slice)
  int left;            // columns of the row from first on, at most those of its groups
};

// Plain arithmetic, so tests/row_layout_check.cu runs it on the host for every thread of a launch.
__host__ __device__ inline SliceColumns slice_columns(const RowPlan& plan, std::int64_t cols, int slice, int thread,
                                                      int group_width) {
  const std::int64_t first_group = std::int64_t(slice) * plan.slice_groups + thread;
  const std::int64_t later_groups = plan.groups - first_group;  // of the row, from the thread's first on
  std::int64_t groups = later_groups > 0 ? (later_groups + plan.row_threads - 1) / plan.row_threads : 0;
  if (groups > plan.groups_per_thread) groups = plan.groups_per_thread;
  const std::int64_t first = first_group * group_width;
  const std::int64_t span = groups * plan.row_threads * group_width;  // from first to past its last group
  const std::int64_t left = cols - first < span ? cols - first : span;
  return {first, plan.row_threads, static_cast<int>(groups), static_cast<int>(left > 0 ? left : 0)};
}

}  // namespace twinop::cuda_detail
