// The PyTorch CUDA kernels: the CUDA launchers behind bias_act_binding.h's op templates. Plain C++
// over c10's device-generic API (current stream), so it compiles against any torch build,
// the CPU-only wheel included.
#include <torch/library.h>

#include "bias_act_cuda.h"
#include "bias_act_binding.h"

namespace twinop::torch_binding {

// Scratch for the deterministic column sums, from PyTorch's caching allocator.
inline at::Tensor workspace_for(const at::Tensor& like, const Matrix2D& m, DType dtype) {
  return workspace_like(like, bias_act_cuda_workspace_bytes(m.rows, m.cols, dtype));
}

struct CudaKernels {
  // twinop-feature: out
  // The kernels read through __restrict__ pointers: an output may not alias an input.
  static constexpr bool kRunsInPlace = false;
  // twinop-feature: end
  static void forward(const ForwardArgs& a, at::Tensor& y) {
    bias_act_forward_cuda(a.x.const_data_ptr(), a.bias.const_data_ptr(), y.mutable_data_ptr(), a.matrix.rows,
                          a.matrix.cols, a.dtype, a.act, current_stream(a.x));
  }
  static void backward(const BackwardArgs& a, at::Tensor& dx, at::Tensor& dbias) {
    at::Tensor workspace = workspace_for(a.x, a.matrix, a.dtype);
    bias_act_backward_cuda(a.dy.const_data_ptr(), a.x.const_data_ptr(), a.bias.const_data_ptr(),
                           dx.mutable_data_ptr(), dbias.mutable_data_ptr(), workspace.mutable_data_ptr(),
                           workspace.numel(), a.matrix.rows, a.matrix.cols, a.dtype, a.act, current_stream(a.x));
  }
  // twinop-feature: second-order
  static void double_backward(const DoubleBackwardArgs& a, at::Tensor& d_dy, at::Tensor& d_x, at::Tensor& d_bias) {
    at::Tensor workspace = workspace_for(a.x, a.matrix, a.dtype);
    bias_act_double_backward_cuda(a.g.const_data_ptr(), a.g_bias.const_data_ptr(), a.dy.const_data_ptr(),
                                  a.x.const_data_ptr(), a.bias.const_data_ptr(), d_dy.mutable_data_ptr(),
                                  d_x.mutable_data_ptr(), d_bias.mutable_data_ptr(), workspace.mutable_data_ptr(),
                                  workspace.numel(), a.matrix.rows, a.matrix.cols, a.dtype, a.act,
                                  current_stream(a.x));
  }
  // twinop-feature: end
};

}  // namespace twinop::torch_binding

TORCH_LIBRARY_IMPL(twinop, CUDA, m) {
  m.impl("bias_act", &twinop::torch_binding::bias_act<twinop::torch_binding::CudaKernels>);
  m.impl("bias_act_backward", &twinop::torch_binding::bias_act_backward<twinop::torch_binding::CudaKernels>);
  // twinop-feature: second-order
  m.impl("bias_act_double_backward",
         &twinop::torch_binding::bias_act_double_backward<twinop::torch_binding::CudaKernels>);
  // twinop-feature: out
  m.impl("bias_act.out", &twinop::torch_binding::bias_act_out<twinop::torch_binding::CudaKernels>);
  m.impl("bias_act_backward.out", &twinop::torch_binding::bias_act_backward_out<twinop::torch_binding::CudaKernels>);
  // twinop-feature: end
}
