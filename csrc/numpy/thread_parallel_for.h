// The core's ParallelFor for the numpy binding. numpy has no thread pool to lend, so a call that
// the core cuts into several chunks starts its own helper threads (up to the module's thread
// count, set_num_threads) and joins them before it returns: no thread outlives the call, so
// there is no pool to shut down at exit or to lose across fork(). Starting and joining a thread
// took 24-42 us on the project's 2-core machine, about one chunk's work (a chunk is at least 32k
// elements): a call of one chunk starts none.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

#include "parallel_for.h"

namespace twinop::numpy_binding {

// Threads per call, the calling thread included; one means the calling thread alone. twinop.numpy
// sets it on import to the CPUs the process may use.
inline std::atomic<int>& thread_count() {
  static std::atomic<int> count{1};
  return count;
}

inline void run_on_threads(std::int64_t chunks, const ChunkBody& body) {
  const std::int64_t threads = std::min<std::int64_t>(thread_count().load(), chunks);
  std::atomic<std::int64_t> next_chunk{0};
  const auto take_chunks = [&] {
    for (std::int64_t c = next_chunk++; c < chunks; c = next_chunk++) body(c, c + 1);
  };
  std::vector<std::thread> helpers;
  helpers.reserve(static_cast<std::size_t>(threads - 1));
  for (std::int64_t i = 1; i < threads; ++i) {
    try {
      helpers.emplace_back(take_chunks);
    } catch (const std::system_error&) {
      break;  // the system refused a thread: the threads already running take its chunks
    }
  }
  take_chunks();
  for (std::thread& helper : helpers) helper.join();
}

}  // namespace twinop::numpy_binding
