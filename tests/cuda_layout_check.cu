// The kernels' thread layout, run on the host for every thread of a launch (vector_io.cuh,
// tile_launch.cuh), for tests/test_cuda_layout.py: on odd and even widths, narrow and wide, and
// every 16-byte misalignment of the layout tensor and of a second tensor, it checks that
// - every element of every row is moved by exactly one thread;
// - each thread's columns stay inside its block's span, and the column sums' tile positions of
//   each row of threads are a permutation of the span (store_block_column_sums);
// - a group that moves as a vector is W consecutive columns on a 16-byte boundary in every row
//   the thread walks, and the layout tensor's groups are vectors but for at most two a row of a span;
// - each element's row of threads (blockIdx.y, threadIdx.y) is the one the aligned layout gives,
//   so every column is summed in the same order whatever the alignment.
// Prints one line per failure and exits 1, or prints the number of cases checked.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "tile_launch.cuh"
#include "vector_io.cuh"

namespace {

using twinop::cuda_detail::group_columns;
using twinop::cuda_detail::group_is_vector;
using twinop::cuda_detail::plan_tiles;
using twinop::cuda_detail::row_head;
using twinop::cuda_detail::ThreadColumns;

int failures = 0;

void fail(const char* what, int W, std::int64_t rows, std::int64_t cols, int layout_misalignment, int other_misalignment) {
  if (++failures <= 20) {
    std::printf("FAIL %s: W=%d rows=%lld cols=%lld misalignments %d %d\n", what, W, static_cast<long long>(rows),
                static_cast<long long>(cols), layout_misalignment, other_misalignment);
  }
}

template <int W>
void check(std::int64_t rows, std::int64_t cols, int layout_misalignment, int other_misalignment) {
  const auto plan = plan_tiles(rows, cols, W);
  const int block_x = plan.block.x, block_y = plan.block.y;
  const std::int64_t row_step = std::int64_t(plan.grid.y) * block_y;
  const std::size_t element_bytes = 16 / W;
  const std::uintptr_t layout = 4096 + layout_misalignment * element_bytes;
  const std::uintptr_t other = 8192 + other_misalignment * element_bytes;
  if (row_step % W != 0) fail("row step not a multiple of W", W, rows, cols, layout_misalignment, other_misalignment);

  std::vector<int> moved(static_cast<std::size_t>(rows * cols), 0);
  for (unsigned bx = 0; bx < plan.grid.x; ++bx) {
    const std::int64_t span_start = std::int64_t(bx) * block_x * W;
    const int span = static_cast<int>(cols - span_start < block_x * W ? cols - span_start : block_x * W);
    std::vector<int> element_wise(static_cast<std::size_t>(rows), 0);
    for (unsigned by = 0; by < plan.grid.y; ++by) {
      for (int ty = 0; ty < block_y; ++ty) {
        const std::int64_t first_row = std::int64_t(by) * block_y + ty;
        const int head = row_head<W>(layout_misalignment, cols, first_row);
        std::vector<int> tile(static_cast<std::size_t>(span), 0);
        for (int tx = 0; tx < block_x; ++tx) {
          const ThreadColumns group = group_columns<W>(span_start, span, tx * W, head);
          for (int j = 0; j < group.count; ++j) {
            const std::int64_t position = group.column(j) - span_start;
            if (position < 0 || position >= span) {
              fail("column outside the span", W, rows, cols, layout_misalignment, other_misalignment);
            } else {
              ++tile[static_cast<std::size_t>(position)];
            }
          }
          const bool layout_vector = group_is_vector(layout, element_bytes, first_row, cols, group);
          const bool other_vector = group_is_vector(other, element_bytes, first_row, cols, group);
          if (group.full != layout_vector) fail("a full group of the layout tensor is not a vector", W, rows, cols, layout_misalignment, other_misalignment);
          for (std::int64_t r = first_row; r < rows; r += row_step) {
            if (group.count > 0 && !layout_vector) ++element_wise[static_cast<std::size_t>(r)];
            for (int j = 0; j < group.count; ++j) {
              const std::int64_t c = group.column(j);
              if (c >= 0 && c < cols) ++moved[static_cast<std::size_t>(r * cols + c)];
              // The aligned layout gives element (r, c) to the same row of threads.
              if (r % row_step != first_row) fail("row of threads", W, rows, cols, layout_misalignment, other_misalignment);
            }
            for (const auto [address, vector] : {std::pair{layout, layout_vector}, std::pair{other, other_vector}}) {
              if (vector && (group.count != W || group.wrap < W ||
                             (address + static_cast<std::uintptr_t>(r * cols + group.first) * element_bytes) % 16 != 0)) {
                fail("a vector group is not one aligned vector", W, rows, cols, layout_misalignment, other_misalignment);
              }
            }
          }
        }
        for (int count : tile) {
          if (count != 1) fail("tile positions are not a permutation of the span", W, rows, cols, layout_misalignment, other_misalignment);
        }
      }
    }
    for (int count : element_wise) {
      if (count > 2) fail("more than two element-wise groups in a row of a span", W, rows, cols, layout_misalignment, other_misalignment);
    }
  }
  for (int count : moved) {
    if (count != 1) {
      fail("an element is not moved exactly once", W, rows, cols, layout_misalignment, other_misalignment);
      break;
    }
  }
}

}  // namespace

int main() {
  const std::int64_t widths[] = {1, 2, 3, 5, 7, 8, 9, 13, 31, 33, 64, 100, 255, 256, 257, 1000, 1001, 3001, 4099};
  const std::int64_t heights[] = {1, 3, 17, 300, 2001};
  int cases = 0;
  for (const std::int64_t cols : widths) {
    for (const std::int64_t rows : heights) {
      if (rows * cols > 2'000'000) continue;
      for (int m = 0; m < 8; ++m) {
        for (int n = 0; n < 8; ++n) {
          if (m < 2 && n < 2) check<2>(rows, cols, m, n), ++cases;
          if (m < 4 && n < 4) check<4>(rows, cols, m, n), ++cases;
          check<8>(rows, cols, m, n), ++cases;
        }
      }
    }
  }
  if (failures) {
    std::printf("%d failures\n", failures);
    return 1;
  }
  std::printf("%d layouts checked\n", cases);
  return 0;
}
