// A thread's group of elements in each row it walks: W = 16 / sizeof(T) of its block's columns,
// moved with one 16-byte load or store where they form one aligned vector, else element by element.
//
// Where the groups sit. When cols % W != 0 each row starts at a different 16-byte alignment, and
// a tensor may start off a boundary, so no one cut of the columns into groups is aligned in every
// row. Cutting each row at its own boundaries would hand columns from thread to thread row by
// row, and with them the bias and the column sums out of registers. Instead, a thread's rows are
// a multiple of W apart (tile_launch.cuh), so they all start at the same alignment, and each
// thread rotates its block's span of W * blockDim.x columns by the distance from the span's start
// to the first 16-byte boundary of a layout tensor (the first output: freshly allocated, so in the
// common case its boundaries are every tensor's). A thread so owns the same columns in every row
// it walks, and its group starts on a boundary and moves as one vector, except for the piece of
// the span before its first boundary and the piece after its last (head and tail), which make up
// the groups of the last one or two threads and move element by element. The bias and the column
// sums stay in registers; every column is summed over the same rows of threads in the same order
// whatever the alignment (dbias is bit-identical across paths); and the one element-wise lane of
// a warp shares the warp's arithmetic (SIMT runs it once for all lanes), costing only its own
// loads and stores. A tensor whose boundaries fall elsewhere than the layout tensor's (a
// misaligned view beside fresh outputs) moves element by element; the others stay vectors.
// Where every row of every tensor starts on a boundary (cols % W == 0, aligned pointers), the
// kernels are instantiated with kAlignedRows: no rotation and no element-wise code at all.
#pragma once

#include <cstddef>
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

__host__ __device__ inline bool is_vector_aligned(std::uintptr_t address) { return address % kVectorBytes == 0; }

// Whether every row of every tensor (cols wide) starts on a 16-byte boundary.
template <typename T, typename... Pointers>
bool rows_are_vector_aligned(std::int64_t cols, const Pointers*... pointers) {
  return cols % kGroupWidth<T> == 0 && (is_vector_aligned(reinterpret_cast<std::uintptr_t>(pointers)) && ...);
}

// The columns of a thread's group, the same in every row it walks.
struct ThreadColumns {
  std::int64_t first;  // column of element 0
  int count;           // elements: W, fewer in a row's last span, 0 past it
  int wrap;            // elements j >= wrap are the span's head: column first + j - span
  int span;            // columns in the block's span
  bool full;           // W columns from a 16-byte boundary of the layout tensor

  __host__ __device__ std::int64_t column(int j) const { return first + j - (j >= wrap ? span : 0); }
};

// Elements from the start of rows first_row + k * (a multiple of W) to their first 16-byte
// boundary, in a tensor whose row 0 starts `misalignment` elements past one.
template <int W>
__host__ __device__ inline int row_head(int misalignment, std::int64_t cols, std::int64_t first_row) {
  return (W - (misalignment + static_cast<int>(first_row % W * (cols % W))) % W) % W;
}

// The group at `position` (threadIdx.x * W) of the span of `span` columns from span_start (a
// multiple of W), in rows whose head is `head`. Plain arithmetic, so tests/cuda_layout_check.cu
// runs it on the host for every thread of a launch.
template <int W>
__host__ __device__ inline ThreadColumns group_columns(std::int64_t span_start, int span, int position, int head) {
  const int rotation = head < span ? head : 0;  // a span without a boundary has no vector: any rotation will do
  const int count = span - position < W ? span - position : W;
  return {span_start + rotation + position, count < 0 ? 0 : count, span - rotation - position, span,
          rotation + position + W <= span};
}

// Whether the group is one aligned vector of the tensor at `address` (rows cols wide, elements
// of `element_bytes`) in each of the thread's rows: they are a multiple of W rows apart, so
// checking first_row checks them all.
__host__ __device__ inline bool group_is_vector(std::uintptr_t address, std::size_t element_bytes,
                                                std::int64_t first_row, std::int64_t cols, const ThreadColumns& group) {
  return group.full && is_vector_aligned(address + static_cast<std::uintptr_t>(first_row * cols + group.first) * element_bytes);
}

// This thread's group, for rows first_row + k * gridDim.y * blockDim.y.
template <bool kAlignedRows, typename T>
__device__ __forceinline__ ThreadColumns thread_columns(const T* layout, std::int64_t cols, std::int64_t first_row) {
  const int span_columns = blockDim.x * kGroupWidth<T>;
  const std::int64_t span_start = std::int64_t(blockIdx.x) * span_columns;
  const int span = static_cast<int>(cols - span_start < span_columns ? cols - span_start : span_columns);
  int head = 0;
  if constexpr (!kAlignedRows) {
    const auto misalignment = static_cast<int>(reinterpret_cast<std::uintptr_t>(layout) % kVectorBytes / sizeof(T));
    head = row_head<kGroupWidth<T>>(misalignment, cols, first_row);
  }
  return group_columns<kGroupWidth<T>>(span_start, span, threadIdx.x * kGroupWidth<T>, head);
}

template <bool kAlignedRows, typename T>
__device__ __forceinline__ bool moves_as_vector(const T* tensor, std::int64_t first_row, std::int64_t cols,
                                                const ThreadColumns& group) {
  if constexpr (kAlignedRows) return true;
  return group_is_vector(reinterpret_cast<std::uintptr_t>(tensor), sizeof(T), first_row, cols, group);
}

// The thread's group of one row (the rest of a short group reads as zero).
template <typename T>
__device__ __forceinline__ Group<T> load_group(const T* __restrict__ row, const ThreadColumns& group, bool vector) {
  const T* body = row + group.first;
  if (vector) return *reinterpret_cast<const Group<T>*>(body);
  const T* head = body - group.span;  // element j >= wrap is head[j]
  Group<T> g{};
#pragma unroll
  for (int j = 0; j < kGroupWidth<T>; ++j) {
    if (j < group.count) g.v[j] = j < group.wrap ? body[j] : head[j];
  }
  return g;
}

template <typename T>
__device__ __forceinline__ void store_group(T* __restrict__ row, const Group<T>& g, const ThreadColumns& group,
                                            bool vector) {
  T* body = row + group.first;
  if (vector) {
    *reinterpret_cast<Group<T>*>(body) = g;
    return;
  }
  T* head = body - group.span;
#pragma unroll
  for (int j = 0; j < kGroupWidth<T>; ++j) {
    if (j < group.count) (j < group.wrap ? body : head)[j] = g.v[j];
  }
}

}  // namespace twinop::cuda_detail
