// A thread's group of consecutive elements of one row: one 16-byte vector. The vectorized
// path moves it with one 16-byte load or store; the fallback (unaligned pointers, or cols
// not a multiple of the group) moves it element by element and stops at the end of the row.
#pragma once

#include <cstdint>

namespace twinop::cuda_detail {

inline constexpr int kVectorBytes = 16;

// Elements in one 16-byte vector of T: 4 float, 2 double, 8 half or bfloat16.
template <typename T>
inline constexpr int kGroupWidth = kVectorBytes / static_cast<int>(sizeof(T));

template <typename T>
struct alignas(kVectorBytes) Group {
  T v[kGroupWidth<T>];
};

inline bool is_vector_aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % kVectorBytes == 0;
}

// Reads the first `count` elements at p (the rest read as zero). kVectorized: count is the
// whole group and p is 16-byte aligned.
template <bool kVectorized, typename T>
__device__ __forceinline__ Group<T> load_group(const T* __restrict__ p, int count) {
  if constexpr (kVectorized) {
    return *reinterpret_cast<const Group<T>*>(p);
  } else {
    Group<T> g{};
#pragma unroll
    for (int j = 0; j < kGroupWidth<T>; ++j) {
      if (j < count) g.v[j] = p[j];
    }
    return g;
  }
}

// Writes the first `count` elements of g to p, with the same contract as load_group.
template <bool kVectorized, typename T>
__device__ __forceinline__ void store_group(T* __restrict__ p, const Group<T>& g, int count) {
  if constexpr (kVectorized) {
    *reinterpret_cast<Group<T>*>(p) = g;
  } else {
#pragma unroll
    for (int j = 0; j < kGroupWidth<T>; ++j) {
      if (j < count) p[j] = g.v[j];
    }
  }
}

}  // namespace twinop::cuda_detail
