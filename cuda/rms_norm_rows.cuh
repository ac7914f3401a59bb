// What RMSNorm's forward and backward kernels share: a thread's groups of a row slice moved between
// memory and registers (16-byte vectors where the row is aligned), the weight plus offset in compute
// type, and 1 / rms.
#pragma once

#include <cstdint>

#include "compute_type.cuh"
#include "row_launch.cuh"
#include "vector_io.cuh"

namespace twinop::cuda_detail {

// The thread's group k of the row at `row` (zeros where it holds none). kVectors: every row of
// every tensor starts on a 16-byte boundary and is whole groups, so each group is one aligned
// vector (indexed as one, so that the compiler moves it as one); else element by element, the
// same elements to the same threads, so the same bits. Separate instantiations keep the vector
// kernels' registers those of vectors alone.
template <bool kVectors, typename S>
__device__ __forceinline__ Group<S> load_row_group(const S* __restrict__ row, const SliceColumns& mine, int k) {
  constexpr int W = kGroupWidth<S>;
  const S* __restrict__ at = row + mine.first;
  Group<S> out;
  if constexpr (kVectors) {  // as 32-bit words throughout: float16 halves would be moved one by one
    uint4 words = make_uint4(0, 0, 0, 0);
    if (k < mine.groups) words = reinterpret_cast<const uint4*>(at)[k * mine.stride];
    reinterpret_cast<uint4&>(out) = words;
  } else {
    const S* __restrict__ group = at + k * mine.stride * W;
    const int left = k < mine.groups ? mine.left - k * mine.stride * W : 0;  // the group's columns in the row
#pragma unroll
    for (int j = 0; j < W; ++j) out.v[j] = j < left ? group[j] : S(0);
  }
  return out;
}

// The thread's groups of the row at `row`.
template <bool kVectors, int K, typename S>
__device__ __forceinline__ void load_row_groups(const S* __restrict__ row, const SliceColumns& mine,
                                                Group<S> (&out)[K]) {
#pragma unroll
  for (int k = 0; k < K; ++k) out[k] = load_row_group<kVectors>(row, mine, k);
}

template <bool kVectors, int K, typename S>
__device__ __forceinline__ void store_row_groups(S* __restrict__ row, const SliceColumns& mine,
                                                 const Group<S> (&in)[K]) {
  constexpr int W = kGroupWidth<S>;
  S* __restrict__ at = row + mine.first;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    if (k >= mine.groups) continue;
    if constexpr (kVectors) {
      reinterpret_cast<uint4*>(at)[k * mine.stride] = reinterpret_cast<const uint4&>(in[k]);
    } else {
      S* __restrict__ group = at + k * mine.stride * W;
      const int left = mine.left - k * mine.stride * W;
#pragma unroll
      for (int j = 0; j < W; ++j) {
        if (j < left) group[j] = in[k].v[j];
      }
    }
  }
}

// weight + offset in compute type for the thread's group k of inputs S: one 16-byte vector of
// weight, or two of float32 weight beside float16 or bfloat16 inputs (zeros past the row's end).
template <bool kVectors, typename S, typename P>
__device__ __forceinline__ void load_shifted_weight(const P* __restrict__ weight, const SliceColumns& mine, int k,
                                                    compute_t<S> offset, compute_t<S> (&w)[kGroupWidth<S>]) {
  constexpr int W = kGroupWidth<S>, kVectorsPerGroup = W / kGroupWidth<P>;
  static_assert(W % kGroupWidth<P> == 0, "a group of inputs is whole vectors of weight");
  const P* __restrict__ at = weight + mine.first;
  const int left = mine.left - k * mine.stride * W;  // the group's columns in the row
#pragma unroll
  for (int h = 0; h < kVectorsPerGroup; ++h) {
    Group<P> in{};
    if constexpr (kVectors) {
      reinterpret_cast<uint4&>(in) = reinterpret_cast<const uint4*>(at)[k * mine.stride * kVectorsPerGroup + h];
    } else {
      const P* __restrict__ part = at + k * mine.stride * W + h * kGroupWidth<P>;
#pragma unroll
      for (int j = 0; j < kGroupWidth<P>; ++j) {
        if (h * kGroupWidth<P> + j < left) in.v[j] = part[j];
      }
    }
#pragma unroll
    for (int j = 0; j < kGroupWidth<P>; ++j) w[h * kGroupWidth<P> + j] = to_compute(in.v[j]) + offset;
  }
}

// Marks the thread's groups as changed in place, so that the compiler keeps them as they are
// (float16 and bfloat16 pairs in 32-bit registers) across a row reduction rather than the compute
// type values it converted them to before: twice the registers, which spill under the 64 that a
// block of 1024 threads allows.
template <typename S>
__device__ __forceinline__ void keep_in_storage_type(Group<S>& group) {
  if constexpr (sizeof(S) == 2) {
#pragma unroll
    for (int q = 0; q < 4; ++q) asm volatile("" : "+r"(reinterpret_cast<unsigned(&)[4]>(group)[q]));
  }
}

template <int K, typename S>
__device__ __forceinline__ void keep_in_storage_type(Group<S> (&data)[K]) {
#pragma unroll
  for (int k = 0; k < K; ++k) keep_in_storage_type(data[k]);
}

// 1 / sqrt(mean of the squares + eps), from a row's sum of squares, as the CPU kernels compute it.
template <typename C>
__device__ __forceinline__ C inverse_rms(C sum_of_squares, std::int64_t cols, C eps) {
  return C(1) / sqrt(sum_of_squares / static_cast<C>(cols) + eps);
}

}  // namespace twinop::cuda_detail
