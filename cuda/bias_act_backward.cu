// dx = dy * act'(x + bias) and dbias = column sums of dx on the GPU, in one pass over the
// data. Deterministic: every column is summed in an order fixed by (rows, cols, dtype, device),
// with no atomics.
//   1. bias_act_backward_kernel: each thread sums its rows of its column group in registers;
//      each block sums its threads' rows through shared memory, in threadIdx.y order, into
//      one partial row: workspace[blockIdx.y][cols].
//   2. sum_partial_rows_kernel: dbias[c] = sum of workspace[0..row_split)[c], in a fixed order.
#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "bias_act_cuda.h"
#include "compute_type.cuh"
#include "cuda_check.h"
#include "dispatch.h"
#include "storage_dispatch.cuh"
#include "tile_launch.cuh"
#include "vector_io.cuh"

namespace twinop {
namespace {

using cuda_detail::compute_t;
using cuda_detail::Group;
using cuda_detail::kGroupWidth;
using cuda_detail::kThreadsPerBlock;

// One row per loop trip: its two independent 16-byte loads (dy, x) already put as many bytes
// in flight as the forward's two rows, and a second row would spill under the 64-register cap.
template <typename S, typename Act, bool kVectorized>
__global__ void __launch_bounds__(kThreadsPerBlock, cuda_detail::kMinBlocksPerSM)
bias_act_backward_kernel(const S* __restrict__ dy, const S* __restrict__ x,
                         const S* __restrict__ bias, S* __restrict__ dx,
                         compute_t<S>* __restrict__ partial_sums, std::int64_t rows,
                         std::int64_t cols) {
  using C = compute_t<S>;
  constexpr int W = kGroupWidth<S>;
  // The block's columns must fit one reduction pass of its threads (block_x <= 32).
  static_assert(32 * W <= kThreadsPerBlock, "a block's columns exceed its threads");

  const std::int64_t col = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * W;
  const int count = col >= cols ? 0 : cols - col < W ? int(cols - col) : W;

  C sum[W] = {};  // this thread's column sums, in row order
  if (count > 0) {
    const Group<S> bias_group = cuda_detail::load_group<kVectorized>(bias + col, count);
    C b[W];
#pragma unroll
    for (int j = 0; j < W; ++j) b[j] = cuda_detail::to_compute(bias_group.v[j]);

    const std::int64_t row_step = std::int64_t(gridDim.y) * blockDim.y;
    for (std::int64_t r = std::int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < rows; r += row_step) {
      const std::int64_t offset = r * cols + col;
      const Group<S> dy_in = cuda_detail::load_group<kVectorized>(dy + offset, count);
      const Group<S> x_in = cuda_detail::load_group<kVectorized>(x + offset, count);
      Group<S> out;
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const C grad = cuda_detail::to_compute(dy_in.v[j]) *
                       Act::derivative(cuda_detail::to_compute(x_in.v[j]) + b[j]);
        out.v[j] = cuda_detail::from_compute<S>(grad);
        sum[j] += grad;  // before rounding to S, as on the CPU
      }
      cuda_detail::store_group<kVectorized>(dx + offset, out, count);
    }
  }

  // Block reduction over threadIdx.y: tile[y][x * W + j] holds thread (x, y)'s sum[j].
  __shared__ C tile[kThreadsPerBlock * W];
  const int tile_cols = blockDim.x * W;
#pragma unroll
  for (int j = 0; j < W; ++j) tile[threadIdx.y * tile_cols + threadIdx.x * W + j] = sum[j];
  __syncthreads();

  const int t = threadIdx.y * blockDim.x + threadIdx.x;  // one thread per column of the block
  const std::int64_t out_col = std::int64_t(blockIdx.x) * tile_cols + t;
  if (t < tile_cols && out_col < cols) {
    C block_sum = 0;
    for (unsigned y = 0; y < blockDim.y; ++y) block_sum += tile[y * tile_cols + t];
    partial_sums[std::int64_t(blockIdx.y) * cols + out_col] = block_sum;
  }
}

// A block sums kSumColumns columns: lane y (threadIdx.y) adds partial rows y, y + kSumLanes, ...
// in order, then lane 0 adds the lanes' sums in order. Lanes keep each serial chain of loads
// short when there are many partial rows (narrow matrices).
constexpr int kSumColumns = 32;
constexpr int kSumLanes = kThreadsPerBlock / kSumColumns;

template <typename S>
__global__ void __launch_bounds__(kThreadsPerBlock)
sum_partial_rows_kernel(const compute_t<S>* __restrict__ partial_sums, S* __restrict__ dbias,
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
    dbias[col] = cuda_detail::from_compute<S>(total);
  }
}

// The one plan behind both the workspace size and the launch, so they always agree.
struct BackwardPlan {
  cuda_detail::TileLaunch tiles;
  std::int64_t partial_rows;  // one per row of blocks
  std::size_t workspace_bytes;
};

template <typename S>
BackwardPlan plan_backward(std::int64_t rows, std::int64_t cols) {
  const cuda_detail::TileLaunch tiles = cuda_detail::plan_tiles(rows, cols, kGroupWidth<S>);
  const std::int64_t partial_rows = tiles.grid.y;
  return {tiles, partial_rows,
          static_cast<std::size_t>(partial_rows * cols) * sizeof(compute_t<S>)};
}

template <typename S, typename Act>
void launch_backward(const S* dy, const S* x, const S* bias, S* dx, S* dbias, void* workspace,
                     std::int64_t rows, std::int64_t cols, cudaStream_t stream) {
  const BackwardPlan plan = plan_backward<S>(rows, cols);
  if (workspace == nullptr || reinterpret_cast<std::uintptr_t>(workspace) % alignof(compute_t<S>) != 0) {
    throw std::invalid_argument("twinop: the backward needs a workspace of "
                                "bias_act_backward_cuda_workspace_bytes, aligned to 8 bytes");
  }
  auto* partial_sums = static_cast<compute_t<S>*>(workspace);

  const bool vectorized = cols % kGroupWidth<S> == 0 && cuda_detail::is_vector_aligned(dy) &&
                          cuda_detail::is_vector_aligned(x) && cuda_detail::is_vector_aligned(bias) &&
                          cuda_detail::is_vector_aligned(dx);
  const auto kernel = vectorized ? bias_act_backward_kernel<S, Act, true>
                                 : bias_act_backward_kernel<S, Act, false>;
  kernel<<<plan.tiles.grid, plan.tiles.block, 0, stream>>>(dy, x, bias, dx, partial_sums, rows, cols);
  TWINOP_CUDA_CHECK(cudaGetLastError());

  const std::int64_t sum_blocks = cuda_detail::ceil_div(cols, kSumColumns);
  if (sum_blocks > INT_MAX) throw std::invalid_argument("twinop: too many columns for one CUDA grid");
  sum_partial_rows_kernel<S><<<static_cast<unsigned>(sum_blocks), dim3(kSumColumns, kSumLanes), 0, stream>>>(
      partial_sums, dbias, plan.partial_rows, cols);
  TWINOP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

std::size_t bias_act_backward_cuda_workspace_bytes(std::int64_t rows, std::int64_t cols,
                                                   DType dtype) {
  if (rows == 0 || cols == 0) return 0;
  std::size_t bytes = 0;
  cuda_detail::visit_storage(dtype, [&](auto storage_tag) {
    bytes = plan_backward<decltype(storage_tag)>(rows, cols).workspace_bytes;
  });
  return bytes;
}

void bias_act_backward_cuda(const void* dy, const void* x, const void* bias, void* dx,
                            void* dbias, void* workspace, std::int64_t rows, std::int64_t cols,
                            DType dtype, Activation act, cudaStream_t stream) {
  if (cols == 0) return;
  cuda_detail::visit_storage(dtype, [&](auto storage_tag) {
    using S = decltype(storage_tag);
    if (rows == 0) {  // nothing to differentiate: dbias is a sum of no terms
      TWINOP_CUDA_CHECK(cudaMemsetAsync(dbias, 0, static_cast<std::size_t>(cols) * sizeof(S), stream));
      return;
    }
    visit_activation(act, [&](auto functor) {
      launch_backward<S, decltype(functor)>(static_cast<const S*>(dy), static_cast<const S*>(x),
                                            static_cast<const S*>(bias), static_cast<S*>(dx),
                                            static_cast<S*>(dbias), workspace, rows, cols, stream);
    });
  });
}

}  // namespace twinop
