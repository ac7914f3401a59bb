// The kernel of Twinop>ThirdOrderTerm: zeros, or an error if its factor has a nonzero element.
// BiasActGradGrad's gradient (python/twinop/tf/_bias_act_gradient.py) is exact but for one term,
// factor * act'''(x + bias), which twinop does not compute. ForwardAccumulator's JVPs build that
// gradient without using this term; the op is stateless, so TensorFlow prunes it there, and it
// raises only where a third derivative is really evaluated, instead of returning a silent zero.
// CPU only: on a GPU, TensorFlow's soft placement copies the factor here.
#include <cstring>

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace twinop::tf_binding {
namespace {

template <typename T>
bool has_nonzero(const tensorflow::Tensor& t) {
  const auto flat = t.flat<T>();
  for (Eigen::Index i = 0; i < flat.size(); ++i)
    if (!(flat(i) == T(0))) return true;  // NaN counts as nonzero
  return false;
}

class ThirdOrderTermOp : public tensorflow::OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& factor = ctx->input(0);
    bool nonzero = false;
    switch (factor.dtype()) {
      case tensorflow::DT_FLOAT: nonzero = has_nonzero<float>(factor); break;
      case tensorflow::DT_DOUBLE: nonzero = has_nonzero<double>(factor); break;
      case tensorflow::DT_HALF: nonzero = has_nonzero<Eigen::half>(factor); break;
      case tensorflow::DT_BFLOAT16: nonzero = has_nonzero<Eigen::bfloat16>(factor); break;
      default: break;  // the op's T attr admits no other type
    }
    OP_REQUIRES(ctx, !nonzero,
                absl::UnimplementedError("twinop.bias_act: third-order derivatives are not supported (the gradient "
                                         "of Twinop>BiasActGradGrad with respect to x and bias needs act''')"));
    tensorflow::Tensor* zeros = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, factor.shape(), &zeros));
    std::memset(zeros->data(), 0, zeros->TotalBytes());  // all-zero bits are +0 in every float type
  }
};

REGISTER_KERNEL_BUILDER(Name("Twinop>ThirdOrderTerm").Device(tensorflow::DEVICE_CPU), ThirdOrderTermOp);

}  // namespace
}  // namespace twinop::tf_binding
