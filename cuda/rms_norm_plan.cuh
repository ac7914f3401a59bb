// RMSNorm's launch plans on the GPU (row_launch.cuh) and the backward's workspace, from the shape
// and dtype alone. Plain arithmetic, so tests/row_layout_check.cu checks them on the host.
#pragma once

#include <cstddef>
#include <cstdint>

#include "partial_row_sums.cuh"
#include "row_launch.cuh"

namespace twinop::cuda_detail {

// Forward: a thread holds 8 groups of its row (128 bytes, 32 registers), so an SM of 1024 threads
// has 128 KB of loads in flight, and a block of 1024 holds 64K bfloat16 (32K float) columns:
// 262,144 float columns are 8 slices, one portable cluster. No partial sums: the grid aims for a
// few waves on any GPU, as the tile launch's does.
inline constexpr int kForwardMaxGroups = 8;
inline constexpr int kForwardMaxRowThreads = 1024;
inline constexpr int kForwardTargetBlocks = 2048;

// Backward: a thread holds 4 groups of dy and of x (64 bytes each: 128 in flight, as the
// forward's) and their column sums in compute type (32 registers for bfloat16), about 90
// registers, so at most 512 threads a block. Each block writes one partial row of dweight: 512
// blocks are two waves of two blocks an SM, and cost (at 16384 x 8192) 4% of the bytes the
// kernel moves; more blocks would shorten the tail and lengthen the partial rows.
inline constexpr int kBackwardMaxGroups = 4;
inline constexpr int kBackwardMaxRowThreads = 512;
inline constexpr int kBackwardTargetBlocks = 512;

inline RowPlan plan_rms_norm_forward(std::int64_t rows, std::int64_t cols, int group_width) {
  return plan_rows(rows, cols, group_width, kForwardMaxGroups, kForwardMaxRowThreads, kForwardTargetBlocks);
}

// The backward's workspace: dweight's partial rows (one per row of blocks), then, where a row has
// several slices, each row's slice sums of dy * w * x for the path without clusters (sized for it
// on every device, so the size depends on the shape alone).
struct RmsNormBackwardPlan {
  RowPlan rows;
  std::size_t workspace_bytes;
};

// C: the compute type of the sums.
template <typename C>
RmsNormBackwardPlan plan_rms_norm_backward(std::int64_t rows, std::int64_t cols, int group_width) {
  const RowPlan plan =
      plan_rows(rows, cols, group_width, kBackwardMaxGroups, kBackwardMaxRowThreads, kBackwardTargetBlocks);
  const std::size_t partial_bytes = partial_rows_bytes<C>(plan.row_blocks, cols);
  const std::size_t dots_bytes = plan.slices > 1 ? partial_rows_bytes<C>(rows, plan.slices) : 0;
  return {plan, partial_bytes + dots_bytes};
}

}  // namespace twinop::cuda_detail
