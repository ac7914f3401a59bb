// What the TensorFlow kernels share, whatever the op: TensorFlow's dtypes described for the core's
// argument rules (arg_checks.h), the rules' errors as InvalidArgument, the intra-op thread pool,
// outputs in an input's buffer, and on GPU builds the op's stream and a workspace from TensorFlow's
// allocator. Each op's files (bias_act_*.cc, rms_norm*.cc) have its REGISTER_OP, shape functions,
// kernels and registration.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>

#include "arg_checks.h"
#include "parallel_for.h"
#include "tensorflow/core/framework/device_base.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/threadpool.h"
#include "types.h"
#if defined(TWINOP_WITH_CUDA)
#include "cuda_stream.h"
#include "xla/stream_executor/stream.h"
#endif

namespace twinop::tf_binding {

inline std::optional<DType> core_dtype(tensorflow::DataType type) {
  switch (type) {
    case tensorflow::DT_FLOAT: return DType::kFloat32;
    case tensorflow::DT_DOUBLE: return DType::kFloat64;
    case tensorflow::DT_HALF: return DType::kFloat16;
    case tensorflow::DT_BFLOAT16: return DType::kBFloat16;
    default: return std::nullopt;
  }
}

inline TensorInfo describe(const tensorflow::Tensor& t) {
  const auto dims = t.shape().dim_sizes();
  return {{dims.begin(), dims.end()}, core_dtype(t.dtype()), tensorflow::DataTypeString(t.dtype())};
}

// TensorFlow reports every bad argument as InvalidArgument, whatever its kind.
inline absl::Status to_status(const std::optional<ArgError>& error) {
  return error ? absl::InvalidArgumentError(error->message) : absl::OkStatus();
}

// Runs a launch, turning a C++ exception from the core (a CUDA error) into a failed op.
template <typename Fn>
void run_guarded(tensorflow::OpKernelContext* ctx, Fn&& launch) {
  try {
    launch();
  } catch (const std::exception& e) {
    ctx->CtxFailure(absl::InternalError(e.what()));
  }
}

// twinop-feature: buffer-reuse
// Output `output` in input `input`'s buffer when TensorFlow says nobody else holds that input and
// the device's kernels run in place (Kernels::kRunsInPlace), as TF's own elementwise ops reuse
// their inputs; a fresh buffer otherwise.
template <typename Kernels>
absl::Status allocate_output_in_place(tensorflow::OpKernelContext* ctx, int input, int output,
                                      const tensorflow::TensorShape& shape, tensorflow::Tensor** out) {
  if constexpr (Kernels::kRunsInPlace) return ctx->forward_input_or_allocate_output({input}, output, shape, out);
  return ctx->allocate_output(output, shape, out);
}
// twinop-feature: end

// The core's CPU chunks on the op's intra-op thread pool, so TF's threading settings apply. One
// chunk per task (Fixed(1)) lets the threads balance to the last chunk: the cost-model overload
// grouped 64 chunks into 8 tasks, and the thread left with the last one set the pace (bias_act's
// forward up to 11% slower).
inline ParallelFor tf_parallel_for(tensorflow::OpKernelContext* ctx) {
  tensorflow::thread::ThreadPool* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  return [pool](std::int64_t chunks, const ChunkBody& body) {
    pool->ParallelFor(chunks, tensorflow::thread::ThreadPool::SchedulingParams::Fixed(1), body);
  };
}

#if defined(TWINOP_WITH_CUDA)
// The op's stream. Plain C++: no CUDA or Eigen GPU header needed.
inline cudaStream_t op_stream(tensorflow::OpKernelContext* ctx) {
  return static_cast<cudaStream_t>(ctx->op_device_context()->stream()->platform_specific_handle().stream);
}

// Scratch of `bytes` for a kernel's deterministic column sums, allocated by TensorFlow; false (and
// the op failed) if it cannot be.
inline bool allocate_workspace(tensorflow::OpKernelContext* ctx, std::size_t bytes, tensorflow::Tensor* workspace) {
  const auto size = static_cast<std::int64_t>(bytes);
  const absl::Status status = ctx->allocate_temp(tensorflow::DT_UINT8, tensorflow::TensorShape({size}), workspace);
  if (!status.ok()) ctx->CtxFailure(status);
  return status.ok();
}
#endif

}  // namespace twinop::tf_binding
