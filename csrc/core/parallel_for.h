// How the CPU kernels spread rows over the caller's threads, and the deterministic column sums
// (a bias or weight gradient) of a result computed row by row.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "compute_type.h"

namespace twinop {

// Runs body(begin, end) over the chunks [0, chunks), in any split and order, on the caller's
// threads: bindings pass their framework's thread pool, so the op follows its thread settings.
// An empty ParallelFor runs everything on the calling thread.
using ChunkBody = std::function<void(std::int64_t begin, std::int64_t end)>;
using ParallelFor = std::function<void(std::int64_t chunks, const ChunkBody& body)>;

// Whole rows per chunk, cut from the shape alone (so a column sum's order is too): chunks of at
// least kMinChunkElements pay for a thread hand-off; at most kMaxChunks keeps the per-chunk
// column sums small.
inline constexpr std::int64_t kMinChunkElements = 1 << 15;
inline constexpr std::int64_t kMaxChunks = 64;

struct RowChunks {
  std::int64_t count;
  std::int64_t rows_per_chunk;
};

inline RowChunks plan_row_chunks(std::int64_t rows, std::int64_t cols) {
  const std::int64_t wanted =
      std::min(std::clamp<std::int64_t>(rows * cols / kMinChunkElements, 1, kMaxChunks), rows);
  const std::int64_t rows_per_chunk = (rows + wanted - 1) / wanted;
  return {(rows + rows_per_chunk - 1) / rows_per_chunk, rows_per_chunk};  // rows > 0
}

inline void run_chunks(const ParallelFor& parallel_for, std::int64_t chunks, const ChunkBody& body) {
  if (parallel_for && chunks > 1) {
    parallel_for(chunks, body);
  } else {
    body(0, chunks);
  }
}

// Runs rows_fn(first_row, row_count) over chunks of rows, on the caller's threads.
template <typename RowsFn>
void for_row_chunks(std::int64_t rows, std::int64_t cols, const ParallelFor& parallel_for, const RowsFn& rows_fn) {
  if (rows == 0) return;
  const RowChunks chunks = plan_row_chunks(rows, cols);
  run_chunks(parallel_for, chunks.count, [&](std::int64_t begin, std::int64_t end) {
    const std::int64_t first_row = begin * chunks.rows_per_chunk;
    rows_fn(first_row, std::min(end * chunks.rows_per_chunk, rows) - first_row);
  });
}

// Runs rows_fn(first_row, row_count, sums) over chunks of rows, on the caller's threads; each
// chunk adds its rows' column sums (in compute type) into its own row of partial sums, and these
// are added in chunk order into column_sums (rounded to S): the same result for any thread count.
template <typename S, typename RowsFn>
void rows_with_column_sums(std::int64_t rows, std::int64_t cols, const ParallelFor& parallel_for, S* column_sums,
                           const RowsFn& rows_fn) {
  std::vector<compute_t<S>> total(static_cast<std::size_t>(cols), compute_t<S>(0));
  if (rows > 0) {
    const RowChunks chunks = plan_row_chunks(rows, cols);
    std::vector<compute_t<S>> chunk_sums(static_cast<std::size_t>(chunks.count * cols), compute_t<S>(0));
    run_chunks(parallel_for, chunks.count, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t chunk = begin; chunk < end; ++chunk) {
        const std::int64_t first_row = chunk * chunks.rows_per_chunk;
        const std::int64_t row_count = std::min(first_row + chunks.rows_per_chunk, rows) - first_row;
        rows_fn(first_row, row_count, chunk_sums.data() + chunk * cols);
      }
    });
    for (std::int64_t chunk = 0; chunk < chunks.count; ++chunk)
      for (std::int64_t c = 0; c < cols; ++c) total[c] += chunk_sums[chunk * cols + c];
  }
  for (std::int64_t c = 0; c < cols; ++c) column_sums[c] = from_compute<S>(total[c]);
}

}  // namespace twinop
