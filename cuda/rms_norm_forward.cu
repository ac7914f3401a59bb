// RMSNorm's forward on the GPU, and its fused residual add: y = x * rstd * (weight + offset), one
// read of x (and residual) and one write of y (and s), each row held in registers between its sum
// of squares and its scaling (row_launch.cuh). A row wider than a block holds is cut into slices,
// one cluster of blocks per row; without clusters, a block reads its row twice (row_reduce.cuh).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "compute_type.cuh"
#include "cuda_check.h"
#include "rms_norm_args.h"
#include "rms_norm_cuda.h"
#include "rms_norm_plan.cuh"
#include "rms_norm_rows.cuh"
#include "row_launch.cuh"
#include "row_reduce.cuh"
#include "storage_dispatch.cuh"
#include "vector_io.cuh"

namespace twinop {
namespace {

using cuda_detail::compute_t;
using cuda_detail::Group;
using cuda_detail::kForwardMaxGroups;
using cuda_detail::kForwardMaxRowThreads;
using cuda_detail::kGroupWidth;
using cuda_detail::RowPlan;
using cuda_detail::SliceColumns;

// a + b in compute type, rounded to S. Half types two at a time: their pair conversions keep both
// in one 32-bit register (one at a time, the float16 ones spill under the 64 registers).
template <typename S>
__device__ __forceinline__ Group<S> add_rounded(const Group<S>& a, const Group<S>& b) {
  Group<S> sum;
  if constexpr (std::is_same_v<S, __half> || std::is_same_v<S, __nv_bfloat16>) {
    using Pair = std::conditional_t<std::is_same_v<S, __half>, __half2, __nv_bfloat162>;
    const Pair* pa = reinterpret_cast<const Pair*>(&a);
    const Pair* pb = reinterpret_cast<const Pair*>(&b);
    Pair* out = reinterpret_cast<Pair*>(&sum);
#pragma unroll
    for (int i = 0; i < kGroupWidth<S> / 2; ++i) {
      if constexpr (std::is_same_v<S, __half>) {
        const float2 fa = __half22float2(pa[i]), fb = __half22float2(pb[i]);
        out[i] = __floats2half2_rn(fa.x + fb.x, fa.y + fb.y);
      } else {
        const float2 fa = __bfloat1622float2(pa[i]), fb = __bfloat1622float2(pb[i]);
        out[i] = __floats2bfloat162_rn(fa.x + fb.x, fa.y + fb.y);
      }
    }
  } else {
#pragma unroll
    for (int j = 0; j < kGroupWidth<S>; ++j) sum.v[j] = a.v[j] + b.v[j];
  }
  return sum;
}

// The thread's groups of row r: x, or with kAdd s = x + residual rounded to S, stored to s_out
// where it is given.
template <bool kAdd, bool kVectors, typename S>
__device__ __forceinline__ void load_inputs(const S* __restrict__ x, const S* __restrict__ residual,
                                            S* __restrict__ s_out, std::int64_t r, std::int64_t cols,
                                            const SliceColumns& mine, Group<S> (&data)[kForwardMaxGroups]) {
  const std::int64_t at = r * cols;
  if constexpr (!kAdd) {
    cuda_detail::load_row_groups<kVectors>(x + at, mine, data);
  } else {
#pragma unroll
    for (int k = 0; k < kForwardMaxGroups; ++k) {
      data[k] = add_rounded(cuda_detail::load_row_group<kVectors>(x + at, mine, k),
                            cuda_detail::load_row_group<kVectors>(residual + at, mine, k));
    }
    if (s_out != nullptr) cuda_detail::store_row_groups<kVectors>(s_out + at, mine, data);
  }
}

// The thread's sum of squares: its groups in order, each element in order.
template <typename S>
__device__ __forceinline__ compute_t<S> sum_of_squares(const Group<S> (&data)[kForwardMaxGroups]) {
  compute_t<S> sum = 0;
#pragma unroll
  for (int k = 0; k < kForwardMaxGroups; ++k) {
#pragma unroll
    for (int j = 0; j < kGroupWidth<S>; ++j) {
      const compute_t<S> v = cuda_detail::to_compute(data[k].v[j]);
      sum = cuda_detail::fma_rounded(v, v, sum);
    }
  }
  return sum;
}

// y = (x * rstd) * (weight + offset) for the thread's groups of row r (data turns into y).
template <bool kVectors, typename S, typename P>
__device__ __forceinline__ void store_scaled(Group<S> (&data)[kForwardMaxGroups], compute_t<S> rstd,
                                             const P* __restrict__ weight, compute_t<S> offset, S* __restrict__ y,
                                             std::int64_t r, std::int64_t cols, const SliceColumns& mine) {
#pragma unroll
  for (int k = 0; k < kForwardMaxGroups; ++k) {
    if (k >= mine.groups) continue;
    compute_t<S> w[kGroupWidth<S>];
    cuda_detail::load_shifted_weight<kVectors, S>(weight, mine, k, offset, w);
#pragma unroll
    for (int j = 0; j < kGroupWidth<S>; ++j) {
      data[k].v[j] = cuda_detail::from_compute<S>(cuda_detail::to_compute(data[k].v[j]) * rstd * w[j]);
    }
  }
  cuda_detail::store_row_groups<kVectors>(y + r * cols, mine, data);
}

// One slice of a row a block (blockIdx.x: the slice), rows a multiple of blockDim.y apart. With
// `cluster`, the row's slices are one cluster and add their sums in it; else a row is one slice.
// The loop runs alike in every thread of the block (a row reduction synchronizes it), so the
// block's last rows may run past the matrix: those threads add zeros and store nothing.
template <typename S, typename P, bool kAdd, bool kVectors>
__global__ void __launch_bounds__(kForwardMaxRowThreads, 1)
rms_norm_forward_kernel(const S* __restrict__ x, const S* __restrict__ residual, const P* __restrict__ weight,
                        S* __restrict__ y, S* __restrict__ s, compute_t<S>* __restrict__ rstd, std::int64_t rows,
                        std::int64_t cols, RowPlan plan, bool cluster, compute_t<S> eps, compute_t<S> offset) {
  using C = compute_t<S>;
  __shared__ C warp_sums[cuda_detail::kMaxWarps];
  __shared__ C exchange[2];
  const SliceColumns mine = cuda_detail::slice_columns(plan, cols, blockIdx.x, threadIdx.x, kGroupWidth<S>);
  const std::int64_t row_step = std::int64_t(gridDim.y) * blockDim.y;
  int parity = 0;
  for (std::int64_t first = std::int64_t(blockIdx.y) * blockDim.y; first < rows; first += row_step, parity ^= 1) {
    const std::int64_t r = first + threadIdx.y;
    const bool active = r < rows;
    Group<S> data[kForwardMaxGroups] = {};
    if (active) load_inputs<kAdd, kVectors>(x, residual, s, r, cols, mine, data);
    C sum = cuda_detail::row_threads_sum(sum_of_squares(data), warp_sums);
    cuda_detail::keep_in_storage_type(data);
    if (cluster) sum = cuda_detail::cluster_slices_sum(sum, exchange, parity);
    const C row_rstd = cuda_detail::inverse_rms(sum, cols, eps);
    if (!active) continue;
    if (rstd != nullptr && blockIdx.x == 0 && threadIdx.x == 0) rstd[r] = row_rstd;
    store_scaled<kVectors>(data, row_rstd, weight, offset, y, r, cols, mine);
  }
  if (cluster) cuda_detail::cluster_rows_done();
}

// A row of several slices without clusters: a block walks every slice of its row twice, first
// adding the slices' sums in order (as a cluster does), then scaling (x, s = x + residual again).
template <typename S, typename P, bool kAdd, bool kVectors>
__global__ void __launch_bounds__(kForwardMaxRowThreads, 1)
rms_norm_forward_two_pass_kernel(const S* __restrict__ x, const S* __restrict__ residual,
                                 const P* __restrict__ weight, S* __restrict__ y, S* __restrict__ s,
                                 compute_t<S>* __restrict__ rstd, std::int64_t rows, std::int64_t cols,
                                 RowPlan plan, compute_t<S> eps, compute_t<S> offset) {
  using C = compute_t<S>;
  __shared__ C warp_sums[cuda_detail::kMaxWarps];
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    C sum = 0;
    for (int slice = 0; slice < plan.slices; ++slice) {
      const SliceColumns mine = cuda_detail::slice_columns(plan, cols, slice, threadIdx.x, kGroupWidth<S>);
      Group<S> data[kForwardMaxGroups];
      load_inputs<kAdd, kVectors>(x, residual, static_cast<S*>(nullptr), r, cols, mine, data);
      sum += cuda_detail::row_threads_sum(sum_of_squares(data), warp_sums);
    }
    const C row_rstd = cuda_detail::inverse_rms(sum, cols, eps);
    if (rstd != nullptr && threadIdx.x == 0) rstd[r] = row_rstd;
    for (int slice = 0; slice < plan.slices; ++slice) {
      const SliceColumns mine = cuda_detail::slice_columns(plan, cols, slice, threadIdx.x, kGroupWidth<S>);
      Group<S> data[kForwardMaxGroups];
      load_inputs<kAdd, kVectors>(x, residual, s, r, cols, mine, data);
      store_scaled<kVectors>(data, row_rstd, weight, offset, y, r, cols, mine);
    }
  }
}

template <typename S, typename P, bool kAdd, bool kVectors>
void launch_forward(const S* x, const S* residual, const P* weight, S* y, S* s, compute_t<S>* rstd,
                    std::int64_t rows, std::int64_t cols, double eps, double offset, cudaStream_t stream) {
  using C = compute_t<S>;
  const RowPlan plan = cuda_detail::plan_rms_norm_forward(rows, cols, kGroupWidth<S>);
  const dim3 block(plan.row_threads, plan.block_rows);
  const auto kernel = rms_norm_forward_kernel<S, P, kAdd, kVectors>;
  cudaLaunchAttribute cluster_attribute{};
  const cudaLaunchConfig_t config = cuda_detail::row_launch_config(dim3(plan.slices, plan.row_blocks), block,
                                                                   plan.slices, stream, cluster_attribute);
  const bool cluster = plan.slices > 1 && cuda_detail::clusters_fit(kernel, config, plan.slices);
  if (plan.slices == 1 || cluster) {
    cuda_detail::launch_rows(config, kernel, x, residual, weight, y, s, rstd, rows, cols, plan, cluster,
                             static_cast<C>(eps), static_cast<C>(offset));
    return;
  }
  // A block per row at a time, as many rows at once as the grid takes.
  const unsigned row_blocks = static_cast<unsigned>(std::min<std::int64_t>(rows, cuda_detail::kMaxGridY));
  rms_norm_forward_two_pass_kernel<S, P, kAdd, kVectors><<<dim3(1, row_blocks), block, 0, stream>>>(
      x, residual, weight, y, s, rstd, rows, cols, plan, static_cast<C>(eps), static_cast<C>(offset));
  TWINOP_CUDA_CHECK(cudaGetLastError());
}

// rstd of rows with no columns: 1 / sqrt(0 / 0 + eps), NaN, as on the CPU and in F.rms_norm.
void fill_empty_rows_rstd(void* rstd, std::int64_t rows, DType dtype, cudaStream_t stream) {
  if (rstd == nullptr || rows == 0) return;
  const std::size_t bytes = static_cast<std::size_t>(rows) * element_bytes(rstd_dtype(dtype));
  TWINOP_CUDA_CHECK(cudaMemsetAsync(rstd, 0xff, bytes, stream));  // all ones: a NaN as float and as double
}

template <bool kAdd>
void forward(const void* x, const void* residual, const void* weight, void* y, void* s, void* rstd,
             std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype, double eps, double offset,
             cudaStream_t stream) {
  if (cols == 0) return fill_empty_rows_rstd(rstd, rows, dtype, stream);
  if (rows == 0) return;
  cuda_detail::visit_input_and_parameter_storage(dtype, weight_dtype, [&](auto storage_tag, auto weight_tag) {
    using S = decltype(storage_tag);
    using P = decltype(weight_tag);
    const auto launch = cuda_detail::rows_are_vector_aligned<S>(cols, x, residual, weight, y, s)
                            ? launch_forward<S, P, kAdd, true>
                            : launch_forward<S, P, kAdd, false>;
    launch(static_cast<const S*>(x), static_cast<const S*>(residual), static_cast<const P*>(weight),
           static_cast<S*>(y), static_cast<S*>(s), static_cast<compute_t<S>*>(rstd), rows, cols, eps, offset,
           stream);
  });
}

}  // namespace

void rms_norm_forward_cuda(const void* x, const void* weight, void* y, void* rstd, std::int64_t rows,
                           std::int64_t cols, DType dtype, DType weight_dtype, double eps, double offset,
                           cudaStream_t stream) {
  forward<false>(x, nullptr, weight, y, nullptr, rstd, rows, cols, dtype, weight_dtype, eps, offset, stream);
}

void add_rms_norm_forward_cuda(const void* x, const void* residual, const void* weight, void* y, void* s,
                               void* rstd, std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype,
                               double eps, double offset, cudaStream_t stream) {
  forward<true>(x, residual, weight, y, s, rstd, rows, cols, dtype, weight_dtype, eps, offset, stream);
}

}  // namespace twinop
