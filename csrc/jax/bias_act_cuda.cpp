// The CUDA handlers: the CUDA launchers behind bias_act_binding.h's handler templates, on the stream XLA
// runs the program on, with the dbias workspace from XLA's scratch allocator. Plain C++: no
// CUDA header needed.
#include <cstddef>

#include "bias_act_cuda.h"
#include "bias_act_binding.h"
#include "bias_act_ops.h"

namespace twinop::jax_binding {
namespace {

struct CudaKernels {
  cudaStream_t stream;
  ffi::ScratchAllocator& scratch;

  ffi::Error forward(const void* x, const void* bias, void* y, std::int64_t rows, std::int64_t cols, DType dtype,
                     Activation act) const {
    bias_act_forward_cuda(x, bias, y, rows, cols, dtype, act, stream);
    return ffi::Error::Success();
  }
  ffi::Error backward(const void* dy, const void* x, const void* bias, void* dx, void* dbias, std::int64_t rows,
                      std::int64_t cols, DType dtype, Activation act) const {
    void* workspace = nullptr;
    const std::size_t bytes = bias_act_cuda_workspace_bytes(rows, cols, dtype);
    if (ffi::Error error = allocate_workspace(scratch, bytes, kBiasAct, &workspace); error.failure()) {
      return error;
    }
    bias_act_backward_cuda(dy, x, bias, dx, dbias, workspace, bytes, rows, cols, dtype, act, stream);
    return ffi::Error::Success();
  }
  // twinop-feature: second-order
  ffi::Error double_backward(const void* g, const void* g_bias, const void* dy, const void* x, const void* bias,
                             void* d_dy, void* d_x, void* d_bias, std::int64_t rows, std::int64_t cols, DType dtype,
                             Activation act) const {
    void* workspace = nullptr;
    const std::size_t bytes = bias_act_cuda_workspace_bytes(rows, cols, dtype);
    if (ffi::Error error = allocate_workspace(scratch, bytes, kBiasAct, &workspace); error.failure()) {
      return error;
    }
    bias_act_double_backward_cuda(g, g_bias, dy, x, bias, d_dy, d_x, d_bias, workspace, bytes, rows, cols, dtype,
                                  act, stream);
    return ffi::Error::Success();
  }
  // twinop-feature: end
};

ffi::Error forward(cudaStream_t stream, ffi::ScratchAllocator scratch, std::string_view act, ffi::AnyBuffer x,
                   ffi::AnyBuffer bias, ffi::Result<ffi::AnyBuffer> y) {
  return bias_act(CudaKernels{stream, scratch}, act, x, bias, y);
}

ffi::Error backward(cudaStream_t stream, ffi::ScratchAllocator scratch, std::string_view act, ffi::AnyBuffer dy,
                    ffi::AnyBuffer x, ffi::AnyBuffer bias, ffi::Result<ffi::AnyBuffer> dx,
                    ffi::Result<ffi::AnyBuffer> dbias) {
  return bias_act_backward(CudaKernels{stream, scratch}, act, dy, x, bias, dx, dbias);
}

// twinop-feature: second-order
ffi::Error double_backward(cudaStream_t stream, ffi::ScratchAllocator scratch, std::string_view act, ffi::AnyBuffer g,
                           ffi::AnyBuffer g_bias, ffi::AnyBuffer dy, ffi::AnyBuffer x, ffi::AnyBuffer bias,
                           ffi::Result<ffi::AnyBuffer> d_dy, ffi::Result<ffi::AnyBuffer> d_x,
                           ffi::Result<ffi::AnyBuffer> d_bias) {
  return bias_act_double_backward(CudaKernels{stream, scratch}, act, g, g_bias, dy, x, bias, d_dy, d_x, d_bias);
}
// twinop-feature: end

}  // namespace
}  // namespace twinop::jax_binding

namespace jb = twinop::jax_binding;

XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopBiasActCuda, jb::forward, jb::forward_signature(jb::cuda_context()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopBiasActBackwardCuda, jb::backward, jb::backward_signature(jb::cuda_context()));
// twinop-feature: second-order
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopBiasActDoubleBackwardCuda, jb::double_backward,
                              jb::double_backward_signature(jb::cuda_context()));
