// The row layout of RMSNorm's kernels (cuda/row_launch.cuh, cuda/rms_norm_plan.cuh), run on the
// host for every thread of a launch, for tests/test_cuda_layout.py: over narrow and wide rows
// (up to a million columns), few and many rows, every group width, forward and backward plans,
// it checks that
// - the plan fits its kernel: row threads a power of 2, whole warps a block, no more threads than
//   the kernel's launch bounds, no more groups a thread than its registers hold, rows of several
//   slices one row a block, a grid the GPU takes;
// - every column of a row is held by exactly one (slice, thread, group), inside its slice, and
//   a thread's in-slice offsets fit 32 bits;
// - every row is walked by exactly one (row of blocks, threadIdx.y);
// - the backward's partial-row store writes each column of a slice once, from the thread that
//   summed it;
// - the backward's workspace holds the partial rows and, for rows of several slices, the slice
//   sums.
// Prints one line per failure and exits 1, or prints the number of plans checked.
#include <climits>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "rms_norm_plan.cuh"
#include "row_launch.cuh"

namespace {

using twinop::cuda_detail::RowPlan;
using twinop::cuda_detail::SliceColumns;
using twinop::cuda_detail::slice_columns;

int failures = 0;

void fail(const char* what, const char* pass, int W, std::int64_t rows, std::int64_t cols) {
  if (++failures <= 20) {
    std::printf("FAIL %s: %s plan, W=%d rows=%lld cols=%lld\n", what, pass, W, static_cast<long long>(rows),
                static_cast<long long>(cols));
  }
}

void check(const RowPlan& plan, const char* pass, int max_groups, int max_row_threads, int W, std::int64_t rows,
           std::int64_t cols) {
  auto expect = [&](bool ok, const char* what) {
    if (!ok) fail(what, pass, W, rows, cols);
  };
  const int block_threads = plan.row_threads * plan.block_rows;
  expect((plan.row_threads & (plan.row_threads - 1)) == 0, "row threads not a power of 2");
  expect(block_threads % 32 == 0, "a block of part of a warp");
  expect(block_threads <= max_row_threads, "more threads than the launch bounds");
  expect(plan.groups_per_thread >= 1 && plan.groups_per_thread <= max_groups, "groups a thread out of range");
  expect(plan.groups == (cols + W - 1) / W, "groups of a row");
  expect(plan.slice_groups == std::int64_t(plan.row_threads) * plan.groups_per_thread, "groups of a slice");
  expect(std::int64_t(plan.slices) * plan.slice_groups >= plan.groups, "slices short of the row");
  expect(std::int64_t(plan.slices - 1) * plan.slice_groups < plan.groups, "an empty slice");
  expect(plan.slices == 1 || plan.block_rows == 1, "several rows a block with several slices");
  expect(plan.row_blocks >= 1 && plan.row_blocks <= 65535, "grid rows out of range");
  expect(std::int64_t(plan.row_blocks) * plan.block_rows <= rows + plan.block_rows - 1,
         "more row blocks than rows");

  std::vector<int> held(static_cast<std::size_t>(cols), 0);
  std::vector<int> stored(static_cast<std::size_t>(cols), 0);
  for (int slice = 0; slice < plan.slices; ++slice) {
    const std::int64_t slice_first = slice * plan.slice_groups * W;
    const std::int64_t slice_end = (slice + 1) * plan.slice_groups * W;
    std::vector<int> groups_of(static_cast<std::size_t>(plan.row_threads));
    for (int thread = 0; thread < plan.row_threads; ++thread) {
      const SliceColumns mine = slice_columns(plan, cols, slice, thread, W);
      groups_of[thread] = mine.groups;
      expect(mine.groups >= 0 && mine.groups <= plan.groups_per_thread, "a thread's groups out of range");
      expect(mine.stride == plan.row_threads, "a thread's stride");
      expect(std::int64_t(mine.groups) * mine.stride * W <= INT_MAX, "in-slice offsets past 32 bits");
      for (int k = 0; k < mine.groups; ++k) {
        for (int j = 0; j < W; ++j) {
          const int offset = k * mine.stride * W + j;
          const std::int64_t col = mine.first + offset;
          expect(col >= slice_first && col < slice_end, "a column outside its slice");
          expect((offset < mine.left) == (col < cols), "left does not end the row");
          if (col < cols) ++held[static_cast<std::size_t>(col)];
        }
      }
    }
    // store_block_partial_row: the k-th groups of the slice's threads, span columns each.
    const SliceColumns first_thread = slice_columns(plan, cols, slice, 0, W);
    const int span = plan.row_threads * W;
    for (int k = 0; k < first_thread.groups; ++k) {
      for (int t = 0; t < span; ++t) {
        const int column = k * span + t;
        if (column >= first_thread.left) break;
        ++stored[static_cast<std::size_t>(first_thread.first + column)];
        expect(k < groups_of[t / W], "a column stored from a thread that does not hold it");
      }
    }
  }
  for (std::int64_t c = 0; c < cols; ++c) {
    if (held[c] != 1) {
      fail("a column not held exactly once", pass, W, rows, cols);
      break;
    }
    if (stored[c] != 1) {
      fail("a partial-row column not stored exactly once", pass, W, rows, cols);
      break;
    }
  }

  std::vector<int> walked(static_cast<std::size_t>(rows), 0);
  const std::int64_t row_step = std::int64_t(plan.row_blocks) * plan.block_rows;
  for (int block = 0; block < plan.row_blocks; ++block) {
    for (int y = 0; y < plan.block_rows; ++y) {
      for (std::int64_t r = std::int64_t(block) * plan.block_rows + y; r < rows; r += row_step) ++walked[r];
    }
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    if (walked[r] != 1) {
      fail("a row not walked exactly once", pass, W, rows, cols);
      break;
    }
  }
}

}  // namespace

int main() {
  using namespace twinop::cuda_detail;
  const std::int64_t widths[] = {1,     2,     3,     5,     7,     8,      9,      31,     33,     63,     64,
                                 65,    100,   127,   128,   129,   255,    256,    257,    1000,   1023,   1024,
                                 1025,  2047,  2048,  4095,  4096,  4097,   8191,   8192,   8193,   16384,  16385,
                                 32768, 32769, 65535, 65536, 65537, 131072, 262144, 262145, 524288, 524289, 1048576};
  const std::int64_t heights[] = {1, 2, 3, 7, 8, 9, 255, 256, 257, 1000, 16384, 1 << 20};
  int plans = 0;
  for (const std::int64_t cols : widths) {
    for (const std::int64_t rows : heights) {
      for (const int W : {2, 4, 8}) {
        check(plan_rms_norm_forward(rows, cols, W), "forward", kForwardMaxGroups, kForwardMaxRowThreads, W, rows,
              cols);
        const RmsNormBackwardPlan backward = plan_rms_norm_backward<float>(rows, cols, W);
        check(backward.rows, "backward", kBackwardMaxGroups, kBackwardMaxRowThreads, W, rows, cols);
        const std::size_t partial_bytes = std::size_t(backward.rows.row_blocks) * cols * sizeof(float);
        const std::size_t dots_bytes = backward.rows.slices > 1 ? std::size_t(rows) * backward.rows.slices * 4 : 0;
        if (backward.workspace_bytes != partial_bytes + dots_bytes) {
          fail("workspace bytes", "backward", W, rows, cols);
        }
        plans += 2;
      }
    }
  }
  if (failures) {
    std::printf("%d failures\n", failures);
    return 1;
  }
  std::printf("%d plans checked\n", plans);
  return 0;
}
