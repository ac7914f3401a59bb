// The thread layout every kernel shares. A thread owns one group of columns (one 16-byte
// vector, vector_io.cuh) and walks down the rows, so its bias stays in registers for the whole
// kernel and, in the backward passes, so do its column sums. threadIdx.x runs along column
// groups (a warp reads 512 contiguous bytes of a row), threadIdx.y and the grid's y along rows.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>

#include "vector_io.cuh"

namespace twinop::cuda_detail {

inline constexpr int kThreadsPerBlock = 256;
// A thread's rows are gridDim.y * blockDim.y apart. blockDim.y = kThreadsPerBlock / blockDim.x
// with blockDim.x <= 32, both powers of 2, so that step is a multiple of every group width:
// all of a thread's rows start at the same 16-byte alignment (vector_io.cuh relies on it).
static_assert(kThreadsPerBlock / 32 % kGroupWidth<std::uint16_t> == 0, "a thread's rows must be a group width apart");
// The forward and backward kernels' __launch_bounds__ promise: this many blocks on each SM,
// so at most 65536 / (kThreadsPerBlock * blocks) registers a thread: 4 blocks (64 registers)
// for the float compute types. double's erf needs more: on sm_90 the float64 gelu forward
// spilled 100 bytes under 64 registers and 68 under 80, and none under 128 (2 blocks).
template <typename S> inline constexpr int kMinBlocksPerSM = 4;
template <> inline constexpr int kMinBlocksPerSM<double> = 2;
inline constexpr int kMaxGridY = 65535;
// Blocks a launch aims for, whatever the GPU: about four waves on an H100 (132 SMs x 4 resident
// blocks), so no SM idles for long; more would lengthen the backward's serial partial-row sums.
inline constexpr std::int64_t kTargetBlocks = 2048;

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

struct TileLaunch {
  dim3 grid;
  dim3 block;
};

// Depends only on (rows, cols, group_width), never on the device: the backward's summation
// order, and with it dbias, is the same on every GPU model and MIG slice. rows, cols > 0.
inline TileLaunch plan_tiles(std::int64_t rows, std::int64_t cols, int group_width) {
  const std::int64_t groups = ceil_div(cols, group_width);
  int block_x = 1;  // a warp's width of column groups, narrower only for narrow matrices
  while (block_x < 32 && block_x < groups) block_x *= 2;
  const int block_y = kThreadsPerBlock / block_x;

  const std::int64_t grid_x = ceil_div(groups, block_x);
  if (grid_x > INT_MAX) throw std::invalid_argument("twinop: too many columns for one CUDA grid");
  // As many row blocks as bring the grid to kTargetBlocks; each loops over its rows.
  const std::int64_t grid_y = std::clamp<std::int64_t>(
      ceil_div(kTargetBlocks, grid_x), 1, std::min<std::int64_t>(ceil_div(rows, block_y), kMaxGridY));

  return {dim3(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y)),
          dim3(static_cast<unsigned>(block_x), static_cast<unsigned>(block_y))};
}

}  // namespace twinop::cuda_detail
