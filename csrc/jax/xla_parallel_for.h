// The core's ParallelFor on XLA's intra-op thread pool (ffi::ThreadPool), so the op follows
// XLA:CPU's threading like the rest of the compiled program.
//
// XLA promises nothing about when a scheduled task runs: the pool may have one thread, busy
// running this very handler, or Schedule may run the task inline. So the calling thread takes
// chunks too, helpers take chunks only while some are left, and the caller waits only for
// chunks that a running helper has claimed: a helper that never starts holds nothing up.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "parallel_for.h"
#include "xla/ffi/api/ffi.h"

namespace twinop::jax_binding {

// One ParallelFor call's chunks, shared with helpers that may start after it has returned
// (they then find no chunk left and touch nothing else).
class ChunkQueue {
 public:
  ChunkQueue(std::int64_t chunks, const ChunkBody& body) : chunks_(chunks), body_(&body) {}

  // Runs chunks until none is left to claim. body_ is only used while a claimed chunk is
  // unfinished, so while the caller is still in wait_all.
  void run() {
    std::int64_t finished = 0;
    for (std::int64_t c = next_++; c < chunks_; c = next_++, ++finished) (*body_)(c, c + 1);
    if (finished == 0) return;
    const std::lock_guard<std::mutex> lock(mutex_);
    done_ += finished;
    if (done_ == chunks_) all_done_.notify_all();
  }

  void wait_all() {
    std::unique_lock<std::mutex> lock(mutex_);
    all_done_.wait(lock, [this] { return done_ == chunks_; });
  }

 private:
  const std::int64_t chunks_;
  const ChunkBody* const body_;
  std::atomic<std::int64_t> next_{0};
  std::mutex mutex_;
  std::condition_variable all_done_;
  std::int64_t done_ = 0;
};

// Valid while `pool` is, i.e. within the handler call that received it.
inline ParallelFor xla_parallel_for(ffi::ThreadPool& pool) {
  return [&pool](std::int64_t chunks, const ChunkBody& body) {
    auto queue = std::make_shared<ChunkQueue>(chunks, body);
    // num_threads() is 0 where XLA has no pool for this call: then the caller runs every chunk.
    const std::int64_t helpers = std::min<std::int64_t>(pool.num_threads(), chunks - 1);
    for (std::int64_t i = 0; i < helpers; ++i) pool.Schedule([queue] { queue->run(); });
    queue->run();
    queue->wait_all();
  };
}

}  // namespace twinop::jax_binding
