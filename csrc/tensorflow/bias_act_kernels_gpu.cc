// The TensorFlow GPU kernels: the CUDA launchers on the op's stream, with the dbias
// workspace allocated by TensorFlow. Plain C++: no CUDA or Eigen GPU header needed.
#include "bias_act_cuda.h"
#include "bias_act_kernel.h"
#include "tensorflow/core/framework/device_base.h"
#include "xla/stream_executor/stream.h"

namespace twinop::tf_binding {
namespace {

cudaStream_t op_stream(tensorflow::OpKernelContext* ctx) {
  return static_cast<cudaStream_t>(ctx->op_device_context()->stream()->platform_specific_handle().stream);
}

}  // namespace

struct GpuLaunch {
  static void forward(tensorflow::OpKernelContext* ctx, const void* x, const void* bias, void* y,
                      std::int64_t rows, std::int64_t cols, DType dtype, Activation act) {
    bias_act_forward_cuda(x, bias, y, rows, cols, dtype, act, op_stream(ctx));
  }
  static void backward(tensorflow::OpKernelContext* ctx, const void* dy, const void* x, const void* bias,
                       void* dx, void* dbias, std::int64_t rows, std::int64_t cols, DType dtype,
                       Activation act) {
    const auto bytes = static_cast<std::int64_t>(bias_act_backward_cuda_workspace_bytes(rows, cols, dtype));
    tensorflow::Tensor workspace;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_UINT8, tensorflow::TensorShape({bytes}), &workspace));
    bias_act_backward_cuda(dy, x, bias, dx, dbias, workspace.data(), rows, cols, dtype, act, op_stream(ctx));
  }
};

TWINOP_REGISTER_TF_KERNELS(tensorflow::DEVICE_GPU, GpuLaunch);

}  // namespace twinop::tf_binding
