// dx = dy * act'(x + bias) and dbias = column sums of dx on the GPU, in one pass over the
// data; dbias is summed deterministically (column_sums.cuh).
#include <cstddef>
#include <cstdint>

#include "bias_act_cuda.h"
#include "column_sums.cuh"
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
using cuda_detail::ThreadColumns;

// One row per loop trip: its two independent 16-byte loads (dy, x) already put as many bytes
// in flight as the forward's two rows, and a second row would spill under the 64-register cap.
// kAlignedRows: every row of dy, x, bias and dx starts on a 16-byte boundary (vector_io.cuh).
template <typename S, typename Act, bool kAlignedRows>
__global__ void __launch_bounds__(kThreadsPerBlock, cuda_detail::kMinBlocksPerSM<S>)
bias_act_backward_kernel(const S* __restrict__ dy, const S* __restrict__ x,
                         const S* __restrict__ bias, S* __restrict__ dx,
                         compute_t<S>* __restrict__ partial_sums, std::int64_t rows,
                         std::int64_t cols) {
  using C = compute_t<S>;
  using P = math::Precision<cuda_detail::kSignificantBits<S>>;
  constexpr int W = kGroupWidth<S>;
  const std::int64_t first_row = std::int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  const ThreadColumns group = cuda_detail::thread_columns<kAlignedRows>(dx, cols, first_row);

  C sum[W] = {};  // this thread's column sums, in row order
  if (group.count > 0) {
    const bool dy_vector = cuda_detail::moves_as_vector<kAlignedRows>(dy, first_row, cols, group);
    const bool x_vector = cuda_detail::moves_as_vector<kAlignedRows>(x, first_row, cols, group);
    const bool dx_vector = cuda_detail::moves_as_vector<kAlignedRows>(dx, first_row, cols, group);
    const Group<S> bias_group =
        cuda_detail::load_group(bias, group, cuda_detail::moves_as_vector<kAlignedRows>(bias, 0, cols, group));
    C b[W];
#pragma unroll
    for (int j = 0; j < W; ++j) b[j] = cuda_detail::to_compute(bias_group.v[j]);

    const std::int64_t row_step = std::int64_t(gridDim.y) * blockDim.y;
    for (std::int64_t r = first_row; r < rows; r += row_step) {
      const std::int64_t offset = r * cols;
      const Group<S> dy_in = cuda_detail::load_group(dy + offset, group, dy_vector);
      const Group<S> x_in = cuda_detail::load_group(x + offset, group, x_vector);
      Group<S> out;
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const C grad = cuda_detail::mul_rounded(cuda_detail::to_compute(dy_in.v[j]),
                                                Act::derivative(cuda_detail::to_compute(x_in.v[j]) + b[j], P{}));
        out.v[j] = cuda_detail::from_compute<S>(grad);
        sum[j] += grad;  // before rounding to S, as on the CPU
      }
      cuda_detail::store_group(dx + offset, out, group, dx_vector);
    }
  }
  cuda_detail::store_block_column_sums<S>(sum, group, partial_sums, cols);
}

template <typename S, typename Act>
void launch_backward(const S* dy, const S* x, const S* bias, S* dx, S* dbias, void* workspace,
                     std::size_t workspace_bytes, std::int64_t rows, std::int64_t cols, cudaStream_t stream) {
  const cuda_detail::ColumnSumPlan plan = cuda_detail::plan_column_sums<S>(rows, cols);
  compute_t<S>* partial_sums = cuda_detail::partial_sums_in<S>(workspace, workspace_bytes, plan);
  const auto kernel = cuda_detail::rows_are_vector_aligned<S>(cols, dy, x, bias, dx)
                          ? bias_act_backward_kernel<S, Act, true>
                          : bias_act_backward_kernel<S, Act, false>;
  kernel<<<plan.tiles.grid, plan.tiles.block, 0, stream>>>(dy, x, bias, dx, partial_sums, rows, cols);
  TWINOP_CUDA_CHECK(cudaGetLastError());
  cuda_detail::launch_sum_partial_rows<S>(partial_sums, dbias, plan.partial_rows, cols, stream);
}

}  // namespace

std::size_t bias_act_cuda_workspace_bytes(std::int64_t rows, std::int64_t cols, DType dtype) {
  if (rows == 0 || cols == 0) return 0;
  std::size_t bytes = 0;
  cuda_detail::visit_storage(dtype, [&](auto storage_tag) {
    bytes = cuda_detail::plan_column_sums<decltype(storage_tag)>(rows, cols).workspace_bytes;
  });
  return bytes;
}

void bias_act_backward_cuda(const void* dy, const void* x, const void* bias, void* dx, void* dbias,
                            void* workspace, std::size_t workspace_bytes, std::int64_t rows,
                            std::int64_t cols, DType dtype, Activation act, cudaStream_t stream) {
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
                                            static_cast<S*>(dbias), workspace, workspace_bytes, rows, cols,
                                            stream);
    });
  });
}

}  // namespace twinop
