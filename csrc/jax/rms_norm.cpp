// RMSNorm as XLA FFI handlers, in one file: the exported C interface, the handlers (written once
// over a platform's kernels: CPU on XLA's thread pool, CUDA on XLA's stream with workspace from its
// scratch allocator), their signatures, and the trace-time check twinop.jax runs. eps and offset
// are f64 attributes, as a Python float passed to jax.ffi.ffi_call is: the kernels get the value
// the caller gave, as in the torch and numpy bindings.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "binding.h"
#include "rms_norm.h"
#include "rms_norm_args.h"
#include "xla_parallel_for.h"
#if defined(TWINOP_WITH_CUDA)
#include "rms_norm_cuda.h"
#endif

// twinop-feature: registration
TWINOP_JAX_HANDLERS(TwinopRmsNorm);             // "twinop_rms_norm": (x, weight; eps, offset) -> (y, rstd)
TWINOP_JAX_HANDLERS(TwinopAddRmsNorm);          // "twinop_add_rms_norm": (x, residual, weight; eps, offset)
                                                //   -> (y, s, rstd)
TWINOP_JAX_HANDLERS(TwinopRmsNormBackward);     // "twinop_rms_norm_backward": (dy, x, rstd, weight; offset)
                                                //   -> (dx, dweight)
TWINOP_JAX_HANDLERS(TwinopAddRmsNormBackward);  // "twinop_add_rms_norm_backward":
                                                //   (dy, ds, s, rstd, weight; offset) -> (dx, dweight)

// twinop-feature: shapes
// The op's argument rules (csrc/core/rms_norm_args.h) for `count` arrays in the order of one
// target's arguments: 2 (rms_norm), 3 (add_rms_norm), 4 (rms_norm_backward) or 5
// (add_rms_norm_backward); the backward rules read offset alone. Returns as binding.h's report.
TWINOP_JAX_EXPORT int TwinopRmsNormCheckArgs(int count, const char* const* dtype_names, const int* ranks,
                                             const std::int64_t* const* shapes, double eps, double offset,
                                             char* message, std::size_t message_size);
// twinop-feature: end

namespace twinop::jax_binding {
namespace {

constexpr const char* kRmsNorm = "twinop.rms_norm";

// twinop-feature: shapes
std::optional<ArgError> check(const std::vector<TensorInfo>& t, double eps, double offset) {
  switch (t.size()) {
    case 2: return check_rms_norm_args(t[0], t[1], eps, offset);
    case 3: return check_add_rms_norm_args(t[0], t[1], t[2], eps, offset);
    case 4: return check_rms_norm_backward_args(t[0], t[1], t[2], t[3], offset);
    case 5: return check_add_rms_norm_backward_args(t[0], t[1], t[2], t[3], t[4], offset);
    default: return ArgError{ArgError::Kind::kValue, "TwinopRmsNormCheckArgs takes 2, 3, 4 or 5 arrays"};
  }
}

// twinop-feature: end
// The forward of rms_norm (residual and s null) or add_rms_norm, on a platform's kernels.
template <typename Kernels>
ffi::Error forward(const Kernels& kernels, double eps, double offset, ffi::AnyBuffer x, const ffi::AnyBuffer* residual,
                   ffi::AnyBuffer weight, ffi::AnyBuffer y, ffi::AnyBuffer* s, ffi::AnyBuffer rstd) {
  const TensorInfo x_info = describe(x), weight_info = describe(weight);
  std::optional<ArgError> error =
      residual ? check_add_rms_norm_args(x_info, describe(*residual), weight_info, eps, offset)
               : check_rms_norm_args(x_info, weight_info, eps, offset);
  if (!error) error = check_same_as("y", describe(y), "x", x_info);
  if (!error && s) error = check_same_as("s", describe(*s), "x", x_info);
  if (!error) error = check_rstd_arg(describe(rstd), x_info, "x");
  if (error) return to_error(kRmsNorm, *error);
  const Matrix2D m = as_matrix(x_info.shape);
  return guarded([&] {
    return kernels.forward(x.untyped_data(), residual ? residual->untyped_data() : nullptr, weight.untyped_data(),
                           y.untyped_data(), s ? s->untyped_data() : nullptr, rstd.untyped_data(), m.rows, m.cols,
                           *x_info.dtype, *weight_info.dtype, eps, offset);
  });
}

// The backward of rms_norm (ds null; x) or of add_rms_norm (at its s, plus ds), on a platform's kernels.
template <typename Kernels>
ffi::Error backward(const Kernels& kernels, double offset, ffi::AnyBuffer dy, const ffi::AnyBuffer* ds,
                    ffi::AnyBuffer x, ffi::AnyBuffer rstd, ffi::AnyBuffer weight, ffi::AnyBuffer dx,
                    ffi::AnyBuffer dweight) {
  const TensorInfo x_info = describe(x), weight_info = describe(weight);
  std::optional<ArgError> error =
      ds ? check_add_rms_norm_backward_args(describe(dy), describe(*ds), x_info, describe(rstd), weight_info, offset)
         : check_rms_norm_backward_args(describe(dy), x_info, describe(rstd), weight_info, offset);
  if (!error) error = check_same_as("dx", describe(dx), ds ? "s" : "x", x_info);
  if (!error) error = check_same_as("dweight", describe(dweight), "weight", weight_info);
  if (error) return to_error(kRmsNorm, *error);
  const Matrix2D m = as_matrix(x_info.shape);
  return guarded([&] {
    return kernels.backward(dy.untyped_data(), ds ? ds->untyped_data() : nullptr, x.untyped_data(),
                            rstd.untyped_data(), weight.untyped_data(), dx.untyped_data(), dweight.untyped_data(),
                            m.rows, m.cols, *x_info.dtype, *weight_info.dtype, offset);
  });
}

struct RmsNormCpuKernels {
  ffi::ThreadPool& pool;

  ffi::Error forward(const void* x, const void* residual, const void* weight, void* y, void* s, void* rstd,
                     std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype, double eps,
                     double offset) const {
    if (residual) {
      add_rms_norm_forward_cpu(x, residual, weight, y, s, rstd, rows, cols, dtype, weight_dtype, eps, offset,
                               xla_parallel_for(pool));
    } else {
      rms_norm_forward_cpu(x, weight, y, rstd, rows, cols, dtype, weight_dtype, eps, offset, xla_parallel_for(pool));
    }
    return ffi::Error::Success();
  }
  ffi::Error backward(const void* dy, const void* ds, const void* x, const void* rstd, const void* weight, void* dx,
                      void* dweight, std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype,
                      double offset) const {
    if (ds) {
      add_rms_norm_backward_cpu(dy, ds, x, rstd, weight, dx, dweight, rows, cols, dtype, weight_dtype, offset,
                                xla_parallel_for(pool));
    } else {
      rms_norm_backward_cpu(dy, x, rstd, weight, dx, dweight, rows, cols, dtype, weight_dtype, offset,
                            xla_parallel_for(pool));
    }
    return ffi::Error::Success();
  }
};

#if defined(TWINOP_WITH_CUDA)
struct RmsNormCudaKernels {
  cudaStream_t stream;
  ffi::ScratchAllocator& scratch;

  ffi::Error forward(const void* x, const void* residual, const void* weight, void* y, void* s, void* rstd,
                     std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype, double eps,
                     double offset) const {
    if (residual) {
      add_rms_norm_forward_cuda(x, residual, weight, y, s, rstd, rows, cols, dtype, weight_dtype, eps, offset,
                                stream);
    } else {
      rms_norm_forward_cuda(x, weight, y, rstd, rows, cols, dtype, weight_dtype, eps, offset, stream);
    }
    return ffi::Error::Success();
  }
  ffi::Error backward(const void* dy, const void* ds, const void* x, const void* rstd, const void* weight, void* dx,
                      void* dweight, std::int64_t rows, std::int64_t cols, DType dtype, DType weight_dtype,
                      double offset) const {
    void* workspace = nullptr;
    const std::size_t bytes = rms_norm_cuda_workspace_bytes(rows, cols, dtype, weight_dtype);
    if (ffi::Error error = allocate_workspace(scratch, bytes, kRmsNorm, &workspace); error.failure()) {
      return error;
    }
    if (ds) {
      add_rms_norm_backward_cuda(dy, ds, x, rstd, weight, dx, dweight, workspace, bytes, rows, cols, dtype,
                                 weight_dtype, offset, stream);
    } else {
      rms_norm_backward_cuda(dy, x, rstd, weight, dx, dweight, workspace, bytes, rows, cols, dtype, weight_dtype,
                             offset, stream);
    }
    return ffi::Error::Success();
  }
};
#endif

// The handlers' signatures after a platform's contexts (binding.h's cpu_context, cuda_context):
// the attributes, then arguments and results in the order of the targets above.
template <typename Binding>
auto rms_norm_signature(Binding binding) {
  return std::move(binding).template Attr<double>("eps").template Attr<double>("offset")
      .template Arg<ffi::AnyBuffer>().template Arg<ffi::AnyBuffer>()    // x, weight
      .template Ret<ffi::AnyBuffer>().template Ret<ffi::AnyBuffer>();   // y, rstd
}

template <typename Binding>
auto add_rms_norm_signature(Binding binding) {
  return std::move(binding).template Attr<double>("eps").template Attr<double>("offset")
      .template Arg<ffi::AnyBuffer>().template Arg<ffi::AnyBuffer>()    // x, residual
      .template Arg<ffi::AnyBuffer>()                                    // weight
      .template Ret<ffi::AnyBuffer>().template Ret<ffi::AnyBuffer>()    // y, s
      .template Ret<ffi::AnyBuffer>();                                   // rstd
}

template <typename Binding>
auto backward_signature(Binding binding) {
  return std::move(binding).template Attr<double>("offset")
      .template Arg<ffi::AnyBuffer>().template Arg<ffi::AnyBuffer>()    // dy, x
      .template Arg<ffi::AnyBuffer>().template Arg<ffi::AnyBuffer>()    // rstd, weight
      .template Ret<ffi::AnyBuffer>().template Ret<ffi::AnyBuffer>();   // dx, dweight
}

template <typename Binding>
auto add_backward_signature(Binding binding) {
  return std::move(binding).template Attr<double>("offset")
      .template Arg<ffi::AnyBuffer>().template Arg<ffi::AnyBuffer>()    // dy, ds
      .template Arg<ffi::AnyBuffer>().template Arg<ffi::AnyBuffer>()    // s, rstd
      .template Arg<ffi::AnyBuffer>()                                    // weight
      .template Ret<ffi::AnyBuffer>().template Ret<ffi::AnyBuffer>();   // dx, dweight
}

using Out = ffi::Result<ffi::AnyBuffer>;

ffi::Error rms_norm_cpu(ffi::ThreadPool pool, double eps, double offset, ffi::AnyBuffer x, ffi::AnyBuffer weight,
                        Out y, Out rstd) {
  return forward(RmsNormCpuKernels{pool}, eps, offset, x, nullptr, weight, *y, nullptr, *rstd);
}

ffi::Error add_rms_norm_cpu(ffi::ThreadPool pool, double eps, double offset, ffi::AnyBuffer x,
                            ffi::AnyBuffer residual, ffi::AnyBuffer weight, Out y, Out s, Out rstd) {
  return forward(RmsNormCpuKernels{pool}, eps, offset, x, &residual, weight, *y, &*s, *rstd);
}

ffi::Error backward_cpu(ffi::ThreadPool pool, double offset, ffi::AnyBuffer dy, ffi::AnyBuffer x,
                        ffi::AnyBuffer rstd, ffi::AnyBuffer weight, Out dx, Out dweight) {
  return backward(RmsNormCpuKernels{pool}, offset, dy, nullptr, x, rstd, weight, *dx, *dweight);
}

ffi::Error add_backward_cpu(ffi::ThreadPool pool, double offset, ffi::AnyBuffer dy, ffi::AnyBuffer ds,
                            ffi::AnyBuffer s, ffi::AnyBuffer rstd, ffi::AnyBuffer weight, Out dx, Out dweight) {
  return backward(RmsNormCpuKernels{pool}, offset, dy, &ds, s, rstd, weight, *dx, *dweight);
}

#if defined(TWINOP_WITH_CUDA)
ffi::Error rms_norm_cuda(cudaStream_t stream, ffi::ScratchAllocator scratch, double eps, double offset,
                         ffi::AnyBuffer x, ffi::AnyBuffer weight, Out y, Out rstd) {
  return forward(RmsNormCudaKernels{stream, scratch}, eps, offset, x, nullptr, weight, *y, nullptr, *rstd);
}

ffi::Error add_rms_norm_cuda(cudaStream_t stream, ffi::ScratchAllocator scratch, double eps, double offset,
                             ffi::AnyBuffer x, ffi::AnyBuffer residual, ffi::AnyBuffer weight, Out y, Out s,
                             Out rstd) {
  return forward(RmsNormCudaKernels{stream, scratch}, eps, offset, x, &residual, weight, *y, &*s, *rstd);
}

ffi::Error backward_cuda(cudaStream_t stream, ffi::ScratchAllocator scratch, double offset, ffi::AnyBuffer dy,
                         ffi::AnyBuffer x, ffi::AnyBuffer rstd, ffi::AnyBuffer weight, Out dx, Out dweight) {
  return backward(RmsNormCudaKernels{stream, scratch}, offset, dy, nullptr, x, rstd, weight, *dx, *dweight);
}

ffi::Error add_backward_cuda(cudaStream_t stream, ffi::ScratchAllocator scratch, double offset, ffi::AnyBuffer dy,
                             ffi::AnyBuffer ds, ffi::AnyBuffer s, ffi::AnyBuffer rstd, ffi::AnyBuffer weight, Out dx,
                             Out dweight) {
  return backward(RmsNormCudaKernels{stream, scratch}, offset, dy, &ds, s, rstd, weight, *dx, *dweight);
}
#endif

}  // namespace
}  // namespace twinop::jax_binding

namespace jb = twinop::jax_binding;

XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopRmsNormCpu, jb::rms_norm_cpu, jb::rms_norm_signature(jb::cpu_context()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopAddRmsNormCpu, jb::add_rms_norm_cpu,
                              jb::add_rms_norm_signature(jb::cpu_context()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopRmsNormBackwardCpu, jb::backward_cpu,
                              jb::backward_signature(jb::cpu_context()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopAddRmsNormBackwardCpu, jb::add_backward_cpu,
                              jb::add_backward_signature(jb::cpu_context()));
#if defined(TWINOP_WITH_CUDA)
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopRmsNormCuda, jb::rms_norm_cuda,
                              jb::rms_norm_signature(jb::cuda_context()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopAddRmsNormCuda, jb::add_rms_norm_cuda,
                              jb::add_rms_norm_signature(jb::cuda_context()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopRmsNormBackwardCuda, jb::backward_cuda,
                              jb::backward_signature(jb::cuda_context()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopAddRmsNormBackwardCuda, jb::add_backward_cuda,
                              jb::add_backward_signature(jb::cuda_context()));
#endif

// twinop-feature: shapes
int TwinopRmsNormCheckArgs(int count, const char* const* dtype_names, const int* ranks,
                           const std::int64_t* const* shapes, double eps, double offset, char* message,
                           std::size_t message_size) {
  using namespace twinop::jax_binding;
  return report(check(describe_arrays(count, dtype_names, ranks, shapes), eps, offset), message, message_size);
}
