// Sums along a row in the row layout (row_launch.cuh): over the threads of a row slice, then over a
// row's slices, each in an order fixed by the plan, and the launch that puts a row's slices in one
// thread block cluster. A row wider than a block holds is summed in one pass where the GPU has
// clusters (compute capability 9.0 on): its slices' blocks run together and read each other's sums
// from distributed shared memory. Elsewhere the kernels fall back to a second pass over the row,
// adding the same slice sums in the same order, so every path gives the same bits.
#pragma once

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "cuda_check.h"
#include "row_launch.cuh"

namespace twinop::cuda_detail {

inline constexpr int kMaxWarps = 32;  // warps in the largest block, 1024 threads
// The most slices a cluster takes: the portable cluster size, which every GPU with clusters runs
// (16 needs an opt-in and fits fewer GPCs).
inline constexpr int kMaxClusterSlices = 8;

// How a kernel adds the sums of a row's slices.
enum class SliceSum {
  kOneSlice,   // the row is one slice
  kCluster,    // one cluster per row; the slices' sums exchanged in distributed shared memory
  kWorkspace,  // an earlier kernel wrote the slices' sums to the workspace
};

// The sum of v over the threads of this thread's row slice (threadIdx.x, one threadIdx.y), the same
// bits in each: a butterfly over the row's lanes (at each step two lanes add the same two values),
// then the row's warps in order. Every thread of the block calls it: it synchronizes the block
// where a row spans warps. warp_sums: shared, kMaxWarps.
template <typename C>
__device__ __forceinline__ C row_threads_sum(C v, C* warp_sums) {
  const int row_threads = blockDim.x;
  for (int offset = (row_threads < 32 ? row_threads : 32) / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  if (row_threads <= 32) return v;
  const int warps = row_threads / 32;
  __syncthreads();  // the last row's readers of warp_sums are done
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.y * warps + threadIdx.x / 32] = v;
  __syncthreads();
  C total = 0;
  for (int w = 0; w < warps; ++w) total += warp_sums[threadIdx.y * warps + w];
  return total;
}

// The sum of slice_sum over the blocks of this cluster (a row's slices), in rank order, the same
// bits in every thread. exchange: shared; alternate rows (parity) use alternate slots, so one
// cluster barrier a row suffices: row i + 1's barrier follows every read of row i's slot, which
// row i + 2 then reuses. Every thread of the cluster calls it, for the same rows.
template <typename C>
__device__ __forceinline__ C cluster_slices_sum(C slice_sum, C (&exchange)[2], int parity) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
  if (threadIdx.x == 0) exchange[parity] = slice_sum;
  cluster.sync();
  C total = 0;
  for (unsigned rank = 0; rank < cluster.num_blocks(); ++rank) {
    total += *cluster.map_shared_rank(&exchange[parity], rank);
  }
  return total;
#else
  __trap();  // never launched in clusters: clusters_fit checks that this code has them
  return slice_sum;
#endif
}

// After a cluster's last row: no block leaves while another may still read its shared memory.
__device__ __forceinline__ void cluster_rows_done() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  cooperative_groups::this_cluster().sync();
#endif
}

// The launch of a row kernel; cluster_slices > 1 makes every cluster_slices blocks along x one cluster.
inline cudaLaunchConfig_t row_launch_config(dim3 grid, dim3 block, int cluster_slices, cudaStream_t stream,
                                            cudaLaunchAttribute& cluster) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.stream = stream;
  if (cluster_slices > 1) {
    cluster.id = cudaLaunchAttributeClusterDimension;
    cluster.val.clusterDim.x = static_cast<unsigned>(cluster_slices);
    cluster.val.clusterDim.y = 1;
    cluster.val.clusterDim.z = 1;
    config.attrs = &cluster;
    config.numAttrs = 1;
  }
  return config;
}

// Whether kernel can run config's clusters of `slices` blocks on the current device: a portable
// cluster size, a GPU with clusters, code compiled for one (not JIT-compiled from older PTX, where
// cluster_slices_sum traps), and room for at least one cluster. A choice of speed only: the
// fallback computes the same bits.
template <typename Kernel>
bool clusters_fit(Kernel* kernel, const cudaLaunchConfig_t& config, int slices) {
  if (slices > kMaxClusterSlices) return false;
  int device = 0, has_clusters = 0;
  TWINOP_CUDA_CHECK(cudaGetDevice(&device));
  TWINOP_CUDA_CHECK(cudaDeviceGetAttribute(&has_clusters, cudaDevAttrClusterLaunch, device));
  if (!has_clusters) return false;
  cudaFuncAttributes attributes{};
  TWINOP_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
  if (attributes.ptxVersion < 90 || attributes.binaryVersion < 90) return false;
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
    (void)cudaGetLastError();  // not an error of the op: it runs without clusters
    return false;
  }
  return clusters > 0;
}

// Launches kernel(args...) with config (and its clusters, if any).
template <typename... Params, typename... Args>
void launch_rows(const cudaLaunchConfig_t& config, void (*kernel)(Params...), Args... args) {
  TWINOP_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, args...));
}

}  // namespace twinop::cuda_detail
