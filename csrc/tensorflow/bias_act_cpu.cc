// The TensorFlow CPU kernels: the core's CPU functions behind bias_act_binding.h's kernel classes.
#include "bias_act.h"
#include "bias_act_binding.h"

namespace twinop::tf_binding {

struct CpuKernels {
  // twinop-feature: buffer-reuse
  static constexpr bool kRunsInPlace = true;  // each element is read before it is written
  // twinop-feature: end
  static void forward(tensorflow::OpKernelContext* ctx, const void* x, const void* bias, void* y,
                      std::int64_t rows, std::int64_t cols, DType dtype, Activation act) {
    bias_act_forward_cpu(x, bias, y, rows, cols, dtype, act, tf_parallel_for(ctx));
  }
  static void backward(tensorflow::OpKernelContext* ctx, const void* dy, const void* x, const void* bias,
                       void* dx, void* dbias, std::int64_t rows, std::int64_t cols, DType dtype,
                       Activation act) {
    bias_act_backward_cpu(dy, x, bias, dx, dbias, rows, cols, dtype, act, tf_parallel_for(ctx));
  }
  // twinop-feature: second-order
  static void double_backward(tensorflow::OpKernelContext* ctx, const void* g, const void* g_bias, const void* dy,
                              const void* x, const void* bias, void* d_dy, void* d_x, void* d_bias,
                              std::int64_t rows, std::int64_t cols, DType dtype, Activation act) {
    bias_act_double_backward_cpu(g, g_bias, dy, x, bias, d_dy, d_x, d_bias, rows, cols, dtype, act,
                                 tf_parallel_for(ctx));
  }
  // twinop-feature: end
};

TWINOP_REGISTER_BIAS_ACT_KERNELS(tensorflow::DEVICE_CPU, CpuKernels);

}  // namespace twinop::tf_binding
