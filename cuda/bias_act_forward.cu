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

// Rows a thread loads before it computes: with 1024 threads an SM, 32 KB of loads in flight
// per SM, several times what hides the memory latency at full bandwidth (and no spills).
constexpr int kRowsInFlight = 2;

// A 2-D layout rather than a flat grid-stride loop: the thread's bias group is loaded and
// converted once into registers and reused on every row, with no per-element column index.
template <typename S, typename Act, bool kVectorized>
__global__ void __launch_bounds__(cuda_detail::kThreadsPerBlock, cuda_detail::kMinBlocksPerSM)
bias_act_forward_kernel(const S* __restrict__ x, const S* __restrict__ bias, S* __restrict__ y,
                        std::int64_t rows, std::int64_t cols) {
  using C = compute_t<S>;
  constexpr int W = kGroupWidth<S>;
  const std::int64_t col = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * W;
  if (col >= cols) return;
  const int count = cols - col < W ? int(cols - col) : W;

  const Group<S> bias_group = cuda_detail::load_group<kVectorized>(bias + col, count);
  C b[W];
#pragma unroll
  for (int j = 0; j < W; ++j) b[j] = cuda_detail::to_compute(bias_group.v[j]);

  const std::int64_t row_step = std::int64_t(gridDim.y) * blockDim.y;
  for (std::int64_t row = std::int64_t(blockIdx.y) * blockDim.y + threadIdx.y; row < rows;
       row += kRowsInFlight * row_step) {
    Group<S> in[kRowsInFlight];
#pragma unroll
    for (int k = 0; k < kRowsInFlight; ++k) {
      const std::int64_t r = row + k * row_step;
      if (r < rows) in[k] = cuda_detail::load_group<kVectorized>(x + r * cols + col, count);
    }
#pragma unroll
    for (int k = 0; k < kRowsInFlight; ++k) {
      const std::int64_t r = row + k * row_step;
      if (r >= rows) break;
      Group<S> out;
#pragma unroll
      for (int j = 0; j < W; ++j) {
        out.v[j] = cuda_detail::from_compute<S>(Act::value(cuda_detail::to_compute(in[k].v[j]) + b[j]));
      }
      cuda_detail::store_group<kVectorized>(y + r * cols + col, out, count);
    }
  }
}

template <typename S, typename Act>
void launch_forward(const S* x, const S* bias, S* y, std::int64_t rows, std::int64_t cols,
                    cudaStream_t stream) {
  const cuda_detail::TileLaunch tiles = cuda_detail::plan_tiles(rows, cols, kGroupWidth<S>);
  const bool vectorized = cols % kGroupWidth<S> == 0 && cuda_detail::is_vector_aligned(x) &&
                          cuda_detail::is_vector_aligned(bias) && cuda_detail::is_vector_aligned(y);
  const auto kernel = vectorized ? bias_act_forward_kernel<S, Act, true>
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
