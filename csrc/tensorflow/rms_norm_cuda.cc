// RMSNorm's TensorFlow GPU kernels: the CUDA launchers on the op's stream, with the dweight
// workspace allocated by TensorFlow (binding.h).
#include "rms_norm_cuda.h"
#include "rms_norm_binding.h"

namespace twinop::tf_binding {

struct RmsNormCudaKernels {
  // twinop-feature: buffer-reuse
  static constexpr bool kRunsInPlace = false;  // the kernels read through __restrict__ pointers
  // twinop-feature: end
  static void forward(tensorflow::OpKernelContext* ctx, const RmsNormForward& f) {
    if (f.residual) {
      add_rms_norm_forward_cuda(f.x, f.residual, f.weight, f.y, f.s, f.rstd, f.m.rows, f.m.cols, f.dtype,
                                f.weight_dtype, f.eps, f.offset, op_stream(ctx));
    } else {
      rms_norm_forward_cuda(f.x, f.weight, f.y, f.rstd, f.m.rows, f.m.cols, f.dtype, f.weight_dtype, f.eps, f.offset,
                            op_stream(ctx));
    }
  }
  static void backward(tensorflow::OpKernelContext* ctx, const RmsNormBackward& b) {
    tensorflow::Tensor workspace;
    const std::size_t bytes = rms_norm_cuda_workspace_bytes(b.m.rows, b.m.cols, b.dtype, b.weight_dtype);
    if (!allocate_workspace(ctx, bytes, &workspace)) return;
    if (b.ds) {
      add_rms_norm_backward_cuda(b.dy, b.ds, b.x, b.rstd, b.weight, b.dx, b.dweight, workspace.data(), bytes,
                                 b.m.rows, b.m.cols, b.dtype, b.weight_dtype, b.offset, op_stream(ctx));
    } else {
      rms_norm_backward_cuda(b.dy, b.x, b.rstd, b.weight, b.dx, b.dweight, workspace.data(), bytes, b.m.rows,
                             b.m.cols, b.dtype, b.weight_dtype, b.offset, op_stream(ctx));
    }
  }
};

TWINOP_REGISTER_RMS_NORM_KERNELS(tensorflow::DEVICE_GPU, RmsNormCudaKernels);

}  // namespace twinop::tf_binding
