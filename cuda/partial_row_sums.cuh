// Deterministic column sums with no atomics, the reduction every parameter gradient shares (dbias,
// dweight): a kernel adds each column over its rows into partial rows in a caller-owned workspace
// (one partial row per block, or row of blocks), in an order fixed by the launch plan; then
// sum_partial_rows_kernel adds the partial rows of each column in a fixed order. The plans depend
// on the shape and dtypes alone, so the sums are bit-identical on every GPU model and MIG slice.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "compute_type.cuh"
#include "cuda_check.h"

namespace twinop::cuda_detail {

// Bytes of partial_rows rows of cols sums in compute type C.
template <typename C>
std::size_t partial_rows_bytes(std::int64_t partial_rows, std::int64_t cols) {
  return static_cast<std::size_t>(partial_rows * cols) * sizeof(C);
}

// The workspace as an array of C, after checking that the caller's buffer is the one the plan
// needs: at least needed_bytes (sized for this shape, not, say, for a smaller one) and aligned
// for C. size_function: the API function that tells the caller the size.
template <typename C>
C* workspace_as(void* workspace, std::size_t workspace_bytes, std::size_t needed_bytes, const char* size_function) {
  if (workspace_bytes < needed_bytes) {
    throw std::invalid_argument("twinop: the workspace has " + std::to_string(workspace_bytes) +
                                " bytes; these sizes need " + std::to_string(needed_bytes) + " (" + size_function +
                                ")");
  }
  if (workspace == nullptr || reinterpret_cast<std::uintptr_t>(workspace) % alignof(C) != 0) {
    throw std::invalid_argument("twinop: the workspace must be a device buffer aligned to 8 bytes");
  }
  return static_cast<C*>(workspace);
}

// A block sums kSumColumns columns: lane y (threadIdx.y) adds partial rows y, y + kSumLanes, ...
// in order, then lane 0 adds the lanes' sums in order. Lanes keep each serial chain of loads
// short when there are many partial rows (narrow matrices).
inline constexpr int kSumColumns = 32;
inline constexpr int kSumLanes = 8;

// out[c] = the sum of the partial rows in column c, rounded to S (the partial rows hold
// compute_t<S>, the compute type of the inputs the sums came from).
template <typename S>
__global__ void __launch_bounds__(kSumColumns * kSumLanes)
sum_partial_rows_kernel(const compute_t<S>* __restrict__ partial_sums, S* __restrict__ out,
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
    out[col] = from_compute<S>(total);
  }
}

template <typename S>
void launch_sum_partial_rows(const compute_t<S>* partial_sums, S* out, std::int64_t partial_rows, std::int64_t cols,
                             cudaStream_t stream) {
  const std::int64_t blocks = (cols + kSumColumns - 1) / kSumColumns;
  if (blocks > INT_MAX) throw std::invalid_argument("twinop: too many columns for one CUDA grid");
  sum_partial_rows_kernel<S><<<static_cast<unsigned>(blocks), dim3(kSumColumns, kSumLanes), 0, stream>>>(
      partial_sums, out, partial_rows, cols);
  TWINOP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace twinop::cuda_detail
