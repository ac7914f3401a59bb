// The PyTorch CUDA kernels on the stable ABI: the CUDA launchers behind bias_act_binding.h's op templates,
// on the current stream of the input's device, under a device guard, with the workspace from
// PyTorch's caching allocator (binding.h); one library serves CPU-only and CUDA builds of torch alike.
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>

#include "bias_act_cuda.h"
#include "bias_act_binding.h"

namespace twinop::torch_stable_binding {

// Scratch for the deterministic column sums, from PyTorch's caching allocator.
inline Tensor workspace_for(const Tensor& like, const Matrix2D& m, DType dtype) {
  return workspace_like(like, bias_act_cuda_workspace_bytes(m.rows, m.cols, dtype));
}

using torch::stable::accelerator::DeviceGuard;

struct CudaKernels {
  // twinop-feature: out
  // The kernels read through __restrict__ pointers: an output may not alias an input.
  static constexpr bool kRunsInPlace = false;
  // twinop-feature: end
  static void forward(const ForwardArgs& a, Tensor& y) {
    const DeviceGuard guard(a.x.get_device_index());
    bias_act_forward_cuda(a.x.const_data_ptr(), a.bias.const_data_ptr(), y.mutable_data_ptr(), a.matrix.rows,
                          a.matrix.cols, a.dtype, a.act, current_stream(kBiasAct, a.x));
  }
  static void backward(const BackwardArgs& a, Tensor& dx, Tensor& dbias) {
    const DeviceGuard guard(a.x.get_device_index());
    Tensor workspace = workspace_for(a.x, a.matrix, a.dtype);
    bias_act_backward_cuda(a.dy.const_data_ptr(), a.x.const_data_ptr(), a.bias.const_data_ptr(),
                           dx.mutable_data_ptr(), dbias.mutable_data_ptr(), workspace.mutable_data_ptr(),
                           workspace.numel(), a.matrix.rows, a.matrix.cols, a.dtype, a.act,
                           current_stream(kBiasAct, a.x));
  }
  // twinop-feature: second-order
  static void double_backward(const DoubleBackwardArgs& a, Tensor& d_dy, Tensor& d_x, Tensor& d_bias) {
    const DeviceGuard guard(a.x.get_device_index());
    Tensor workspace = workspace_for(a.x, a.matrix, a.dtype);
    bias_act_double_backward_cuda(a.g.const_data_ptr(), a.g_bias.const_data_ptr(), a.dy.const_data_ptr(),
                                  a.x.const_data_ptr(), a.bias.const_data_ptr(), d_dy.mutable_data_ptr(),
                                  d_x.mutable_data_ptr(), d_bias.mutable_data_ptr(), workspace.mutable_data_ptr(),
                                  workspace.numel(), a.matrix.rows, a.matrix.cols, a.dtype, a.act,
                                  current_stream(kBiasAct, a.x));
  }
  // twinop-feature: end
};

}  // namespace twinop::torch_stable_binding

STABLE_TORCH_LIBRARY_IMPL(twinop, CUDA, m) {
  using namespace twinop::torch_stable_binding;
  m.impl("bias_act", TORCH_BOX(&bias_act<CudaKernels>));
  m.impl("bias_act_backward", TORCH_BOX(&bias_act_backward<CudaKernels>));
  // twinop-feature: second-order
  m.impl("bias_act_double_backward", TORCH_BOX(&bias_act_double_backward<CudaKernels>));
  // twinop-feature: out
  m.impl("bias_act.out", TORCH_BOX(&bias_act_out<CudaKernels>));
  m.impl("bias_act_backward.out", TORCH_BOX(&bias_act_backward_out<CudaKernels>));
  // twinop-feature: end
}
