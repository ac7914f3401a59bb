// The TensorFlow GPU kernels: the CUDA launchers on the op's stream, with the dbias
// workspace allocated by TensorFlow (binding.h).
#include "bias_act_cuda.h"
#include "bias_act_binding.h"

namespace twinop::tf_binding {

struct CudaKernels {
  // twinop-feature: buffer-reuse
  static constexpr bool kRunsInPlace = false;  // the kernels read through __restrict__ pointers
  // twinop-feature: end
  static void forward(tensorflow::OpKernelContext* ctx, const void* x, const void* bias, void* y,
                      std::int64_t rows, std::int64_t cols, DType dtype, Activation act) {
    bias_act_forward_cuda(x, bias, y, rows, cols, dtype, act, op_stream(ctx));
  }
  static void backward(tensorflow::OpKernelContext* ctx, const void* dy, const void* x, const void* bias,
                       void* dx, void* dbias, std::int64_t rows, std::int64_t cols, DType dtype,
                       Activation act) {
    tensorflow::Tensor workspace;
    if (!allocate_workspace(ctx, bias_act_cuda_workspace_bytes(rows, cols, dtype), &workspace)) return;
    bias_act_backward_cuda(dy, x, bias, dx, dbias, workspace.data(), workspace.NumElements(), rows, cols, dtype,
                           act, op_stream(ctx));
  }
  // twinop-feature: second-order
  static void double_backward(tensorflow::OpKernelContext* ctx, const void* g, const void* g_bias, const void* dy,
                              const void* x, const void* bias, void* d_dy, void* d_x, void* d_bias,
                              std::int64_t rows, std::int64_t cols, DType dtype, Activation act) {
    tensorflow::Tensor workspace;
    if (!allocate_workspace(ctx, bias_act_cuda_workspace_bytes(rows, cols, dtype), &workspace)) return;
    bias_act_double_backward_cuda(g, g_bias, dy, x, bias, d_dy, d_x, d_bias, workspace.data(),
                                  workspace.NumElements(), rows, cols, dtype, act, op_stream(ctx));
  }
  // twinop-feature: end
};

TWINOP_REGISTER_BIAS_ACT_KERNELS(tensorflow::DEVICE_GPU, CudaKernels);

}  // namespace twinop::tf_binding
