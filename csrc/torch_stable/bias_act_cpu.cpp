// The PyTorch CPU kernels on the stable ABI: the core's CPU functions behind bias_act_binding.h's
// op templates.
#include <torch/csrc/stable/library.h>

#include "bias_act.h"
#include "bias_act_binding.h"

namespace twinop::torch_stable_binding {

struct CpuKernels {
  // twinop-feature: out
  static constexpr bool kRunsInPlace = true;  // each element is read before it is written
  // twinop-feature: end
  static void forward(const ForwardArgs& a, Tensor& y) {
    bias_act_forward_cpu(a.x.const_data_ptr(), a.bias.const_data_ptr(), y.mutable_data_ptr(), a.matrix.rows,
                         a.matrix.cols, a.dtype, a.act, torch_parallel_for);
  }
  static void backward(const BackwardArgs& a, Tensor& dx, Tensor& dbias) {
    bias_act_backward_cpu(a.dy.const_data_ptr(), a.x.const_data_ptr(), a.bias.const_data_ptr(),
                          dx.mutable_data_ptr(), dbias.mutable_data_ptr(), a.matrix.rows, a.matrix.cols, a.dtype,
                          a.act, torch_parallel_for);
  }
  // twinop-feature: second-order
  static void double_backward(const DoubleBackwardArgs& a, Tensor& d_dy, Tensor& d_x, Tensor& d_bias) {
    bias_act_double_backward_cpu(a.g.const_data_ptr(), a.g_bias.const_data_ptr(), a.dy.const_data_ptr(),
                                 a.x.const_data_ptr(), a.bias.const_data_ptr(), d_dy.mutable_data_ptr(),
                                 d_x.mutable_data_ptr(), d_bias.mutable_data_ptr(), a.matrix.rows, a.matrix.cols,
                                 a.dtype, a.act, torch_parallel_for);
  }
  // twinop-feature: end
};

}  // namespace twinop::torch_stable_binding

STABLE_TORCH_LIBRARY_IMPL(twinop, CPU, m) {
  using namespace twinop::torch_stable_binding;
  m.impl("bias_act", TORCH_BOX(&bias_act<CpuKernels>));
  m.impl("bias_act_backward", TORCH_BOX(&bias_act_backward<CpuKernels>));
  // twinop-feature: second-order
  m.impl("bias_act_double_backward", TORCH_BOX(&bias_act_double_backward<CpuKernels>));
  // twinop-feature: out
  m.impl("bias_act.out", TORCH_BOX(&bias_act_out<CpuKernels>));
  m.impl("bias_act_backward.out", TORCH_BOX(&bias_act_backward_out<CpuKernels>));
  // twinop-feature: end
}
