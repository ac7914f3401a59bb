// y = act(x + bias) on the GPU: one read of x and one write of y, 16 bytes a thread at a time.
#include <cstdint>

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
using cuda_detail::ThreadColumns;

// Rows a thread loads before it computes: with 1024 threads an SM (float compute types), 32 KB
// of loads in flight per SM, about twice what hides the memory latency at full bandwidth.
constexpr int kRowsInFlight = 2;

// A 2-D layout rather than a flat grid-stride loop: the thread's bias group is loaded and
// converted once into registers and reused on every row, with no per-element column index.
// kAlignedRows: every row of x, bias and y starts on a 16-byte boundary (vector_io.cuh).
template <typename S, typename Act, bool kAlignedRows>
__global__ void __launch_bounds__(cuda_detail::kThreadsPerBlock, cuda_detail::kMinBlocksPerSM<S>)
bias_act_forward_kernel(const S* __restrict__ x, const S* __restrict__ bias, S* __restrict__ y,
                        std::int64_t rows, std::int64_t cols) {
  using C = compute_t<S>;
  using P = math::Precision<cuda_detail::kSignificantBits<S>>;
  constexpr int W = kGroupWidth<S>;
  const std::int64_t first_row = std::int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  const ThreadColumns group = cuda_detail::thread_columns<kAlignedRows>(y, cols, first_row);
  if (group.count == 0) return;
  const bool x_vector = cuda_detail::moves_as_vector<kAlignedRows>(x, first_row, cols, group);
  const bool y_vector = cuda_detail::moves_as_vector<kAlignedRows>(y, first_row, cols, group);

  const Group<S> bias_group =
      cuda_detail::load_group(bias, group, cuda_detail::moves_as_vector<kAlignedRows>(bias, 0, cols, group));
  C b[W];
#pragma unroll
  for (int j = 0; j < W; ++j) b[j] = cuda_detail::to_compute(bias_group.v[j]);

  const std::int64_t row_step = std::int64_t(gridDim.y) * blockDim.y;
  for (std::int64_t row = first_row; row < rows; row += kRowsInFlight * row_step) {
    Group<S> in[kRowsInFlight];
#pragma unroll
    for (int k = 0; k < kRowsInFlight; ++k) {
      const std::int64_t r = row + k * row_step;
      if (r < rows) in[k] = cuda_detail::load_group(x + r * cols, group, x_vector);
    }
#pragma unroll
    for (int k = 0; k < kRowsInFlight; ++k) {
      const std::int64_t r = row + k * row_step;
      if (r >= rows) break;
      Group<S> out;
#pragma unroll
      for (int j = 0; j < W; ++j) {
        out.v[j] = cuda_detail::from_compute<S>(Act::value(cuda_detail::to_compute(in[k].v[j]) + b[j], P{}));
      }
      cuda_detail::store_group(y + r * cols, out, group, y_vector);
    }
  }
}

template <typename S, typename Act>
void launch_forward(const S* x, const S* bias, S* y, std::int64_t rows, std::int64_t cols,
                    cudaStream_t stream) {
  const cuda_detail::TileLaunch tiles = cuda_detail::plan_tiles(rows, cols, kGroupWidth<S>);
  const auto kernel = cuda_detail::rows_are_vector_aligned<S>(cols, x, bias, y)
                          ? bias_act_forward_kernel<S, Act, true>
                          : bias_act_forward_kernel<S, Act, false>;
  kernel<<<tiles.grid, tiles.block, 0, stream>>>(x, bias, y, rows, cols);
  TWINOP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void bias_act_forward_cuda(const void* x, const void* bias, void* y, std::int64_t rows,
                           std::int64_t cols, DType dtype, Activation act, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  cuda_detail::visit_storage(dtype, [&](auto storage_tag) {
    using S = decltype(storage_tag);
    visit_activation(act, [&](auto functor) {
      launch_forward<S, decltype(functor)>(static_cast<const S*>(x), static_cast<const S*>(bias),
                                           static_cast<S*>(y), rows, cols, stream);
    });
  });
}

}  // namespace twinop
