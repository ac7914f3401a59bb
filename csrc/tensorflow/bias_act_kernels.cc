// The TensorFlow CPU kernels: the core's CPU functions behind the shared kernel classes.
#include "bias_act.h"
#include "bias_act_kernel.h"

namespace twinop::tf_binding {

struct CpuLaunch {
  static void forward(tensorflow::OpKernelContext*, const void* x, const void* bias, void* y,
                      std::int64_t rows, std::int64_t cols, DType dtype, Activation act) {
    bias_act_forward_cpu(x, bias, y, rows, cols, dtype, act);
  }
  static void backward(tensorflow::OpKernelContext*, const void* dy, const void* x, const void* bias,
                       void* dx, void* dbias, std::int64_t rows, std::int64_t cols, DType dtype,
                       Activation act) {
    bias_act_backward_cpu(dy, x, bias, dx, dbias, rows, cols, dtype, act);
  }
};

TWINOP_REGISTER_TF_KERNELS(tensorflow::DEVICE_CPU, CpuLaunch);

}  // namespace twinop::tf_binding
