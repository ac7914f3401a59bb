// The PyTorch CPU kernels: the core's CPU functions behind bias_act_binding.h's op templates.
#include <torch/library.h>

#include "bias_act.h"
#include "bias_act_binding.h"

namespace twinop::torch_binding {

struct CpuKernels {
  // twinop-feature: out
  static constexpr bool kRunsInPlace = true;  // each element is read before it is written
  // twinop-feature: end
  static void forward(const ForwardArgs& a, at::Tensor& y) {
    bias_act_forward_cpu(a.x.const_data_ptr(), a.bias.const_data_ptr(), y.mutable_data_ptr(), a.matrix.rows,
                         a.matrix.cols, a.dtype, a.act, torch_parallel_for);
  }
  static void backward(const BackwardArgs& a, at::Tensor& dx, at::Tensor& dbias) {
    bias_act_backward_cpu(a.dy.const_data_ptr(), a.x.const_data_ptr(), a.bias.const_data_ptr(),
                          dx.mutable_data_ptr(), dbias.mutable_data_ptr(), a.matrix.rows, a.matrix.cols, a.dtype,
                          a.act, torch_parallel_for);
  }
  // twinop-feature: second-order
  static void double_backward(const DoubleBackwardArgs& a, at::Tensor& d_dy, at::Tensor& d_x, at::Tensor& d_bias) {
    bias_act_double_backward_cpu(a.g.const_data_ptr(), a.g_bias.const_data_ptr(), a.dy.const_data_ptr(),
                                 a.x.const_data_ptr(), a.bias.const_data_ptr(), d_dy.mutable_data_ptr(),
                                 d_x.mutable_data_ptr(), d_bias.mutable_data_ptr(), a.matrix.rows, a.matrix.cols,
                                 a.dtype, a.act, torch_parallel_for);
  }
  // twinop-feature: end
};

}  // namespace twinop::torch_binding

TORCH_LIBRARY_IMPL(twinop, CPU, m) {
  m.impl("bias_act", &twinop::torch_binding::bias_act<twinop::torch_binding::CpuKernels>);
  m.impl("bias_act_backward", &twinop::torch_binding::bias_act_backward<twinop::torch_binding::CpuKernels>);
  // twinop-feature: second-order
  m.impl("bias_act_double_backward",
         &twinop::torch_binding::bias_act_double_backward<twinop::torch_binding::CpuKernels>);
  // twinop-feature: out
  m.impl("bias_act.out", &twinop::torch_binding::bias_act_out<twinop::torch_binding::CpuKernels>);
  m.impl("bias_act_backward.out", &twinop::torch_binding::bias_act_backward_out<twinop::torch_binding::CpuKernels>);
  // twinop-feature: end
}
