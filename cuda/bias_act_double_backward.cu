// The double backward on the GPU, in one pass over the data: with v = x + bias and
// G = g + g_bias, d_dy = G * act'(v), d_x = G * dy * act''(v), and d_bias = column sums of d_x,
// summed deterministically (column_sums.cuh).
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

// Two blocks an SM at least (where tile_launch.cuh's kMinBlocksPerSM<S> gives the other kernels
// four for float), so up to 128 registers a thread: the first and second derivative,
// the bias and g_bias groups and three input rows spill under the other kernels' 64.
constexpr int kDoubleBackwardMinBlocksPerSM = 2;

// The backward kernel's layout, with a third input row (g) and a second output row (d_dy); the
// thread's g_bias group stays in registers beside its bias group.
// kAlignedRows: every row of every tensor starts on a 16-byte boundary (vector_io.cuh).
template <typename S, typename Act, bool kAlignedRows>
__global__ void __launch_bounds__(kThreadsPerBlock, kDoubleBackwardMinBlocksPerSM)
bias_act_double_backward_kernel(const S* __restrict__ g, const S* __restrict__ g_bias,
                                const S* __restrict__ dy, const S* __restrict__ x,
                                const S* __restrict__ bias, S* __restrict__ d_dy, S* __restrict__ d_x,
                                compute_t<S>* __restrict__ partial_sums, std::int64_t rows,
                                std::int64_t cols) {
  using C = compute_t<S>;
  using P = math::Precision<cuda_detail::kSignificantBits<S>>;
  constexpr int W = kGroupWidth<S>;
  const std::int64_t first_row = std::int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  const ThreadColumns group = cuda_detail::thread_columns<kAlignedRows>(d_dy, cols, first_row);

  C sum[W] = {};  // this thread's column sums of d_x, in row order
  if (group.count > 0) {
    const bool g_vector = cuda_detail::moves_as_vector<kAlignedRows>(g, first_row, cols, group);
    const bool dy_vector = cuda_detail::moves_as_vector<kAlignedRows>(dy, first_row, cols, group);
    const bool x_vector = cuda_detail::moves_as_vector<kAlignedRows>(x, first_row, cols, group);
    const bool d_dy_vector = cuda_detail::moves_as_vector<kAlignedRows>(d_dy, first_row, cols, group);
    const bool d_x_vector = cuda_detail::moves_as_vector<kAlignedRows>(d_x, first_row, cols, group);
    const Group<S> bias_group =
        cuda_detail::load_group(bias, group, cuda_detail::moves_as_vector<kAlignedRows>(bias, 0, cols, group));
    const Group<S> g_bias_group =
        cuda_detail::load_group(g_bias, group, cuda_detail::moves_as_vector<kAlignedRows>(g_bias, 0, cols, group));
    C b[W], g_b[W];
#pragma unroll
    for (int j = 0; j < W; ++j) {
      b[j] = cuda_detail::to_compute(bias_group.v[j]);
      g_b[j] = cuda_detail::to_compute(g_bias_group.v[j]);
    }

    const std::int64_t row_step = std::int64_t(gridDim.y) * blockDim.y;
    for (std::int64_t r = first_row; r < rows; r += row_step) {
      const std::int64_t offset = r * cols;
      const Group<S> g_in = cuda_detail::load_group(g + offset, group, g_vector);
      const Group<S> dy_in = cuda_detail::load_group(dy + offset, group, dy_vector);
      const Group<S> x_in = cuda_detail::load_group(x + offset, group, x_vector);
      Group<S> d_dy_out, d_x_out;
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const C grad = cuda_detail::to_compute(g_in.v[j]) + g_b[j];
        const C v = cuda_detail::to_compute(x_in.v[j]) + b[j];
        const C grad_x =
            cuda_detail::mul_rounded(grad * cuda_detail::to_compute(dy_in.v[j]), Act::second_derivative(v, P{}));
        d_dy_out.v[j] = cuda_detail::from_compute<S>(grad * Act::derivative(v, P{}));
        d_x_out.v[j] = cuda_detail::from_compute<S>(grad_x);
        sum[j] += grad_x;  // before rounding to S, as on the CPU
      }
      cuda_detail::store_group(d_dy + offset, d_dy_out, group, d_dy_vector);
      cuda_detail::store_group(d_x + offset, d_x_out, group, d_x_vector);
    }
  }
  cuda_detail::store_block_column_sums<S>(sum, group, partial_sums, cols);
}

template <typename S, typename Act>
void launch_double_backward(const S* g, const S* g_bias, const S* dy, const S* x, const S* bias, S* d_dy,
                            S* d_x, S* d_bias, void* workspace, std::size_t workspace_bytes, std::int64_t rows,
                            std::int64_t cols, cudaStream_t stream) {
  const cuda_detail::ColumnSumPlan plan = cuda_detail::plan_column_sums<S>(rows, cols);
  compute_t<S>* partial_sums = cuda_detail::partial_sums_in<S>(workspace, workspace_bytes, plan);
  const auto kernel = cuda_detail::rows_are_vector_aligned<S>(cols, g, g_bias, dy, x, bias, d_dy, d_x)
                          ? bias_act_double_backward_kernel<S, Act, true>
                          : bias_act_double_backward_kernel<S, Act, false>;
  kernel<<<plan.tiles.grid, plan.tiles.block, 0, stream>>>(g, g_bias, dy, x, bias, d_dy, d_x, partial_sums,
                                                           rows, cols);
  TWINOP_CUDA_CHECK(cudaGetLastError());
  cuda_detail::launch_sum_partial_rows<S>(partial_sums, d_bias, plan.partial_rows, cols, stream);
}

}  // namespace

void bias_act_double_backward_cuda(const void* g, const void* g_bias, const void* dy, const void* x,
                                   const void* bias, void* d_dy, void* d_x, void* d_bias, void* workspace,
                                   std::size_t workspace_bytes, std::int64_t rows, std::int64_t cols,
                                   DType dtype, Activation act, cudaStream_t stream) {
  if (cols == 0) return;
  cuda_detail::visit_storage(dtype, [&](auto storage_tag) {
    using S = decltype(storage_tag);
    if (rows == 0) {  // d_bias is a sum of no terms
      TWINOP_CUDA_CHECK(cudaMemsetAsync(d_bias, 0, static_cast<std::size_t>(cols) * sizeof(S), stream));
      return;
    }
    visit_activation(act, [&](auto functor) {
      launch_double_backward<S, decltype(functor)>(
          static_cast<const S*>(g), static_cast<const S*>(g_bias), static_cast<const S*>(dy),
          static_cast<const S*>(x), static_cast<const S*>(bias), static_cast<S*>(d_dy), static_cast<S*>(d_x),
          static_cast<S*>(d_bias), workspace, workspace_bytes, rows, cols, stream);
    });
  });
}

}  // namespace twinop
