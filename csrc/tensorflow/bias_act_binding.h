// bias_act's TensorFlow kernels, written once for every device: validate, allocate outputs with
// TensorFlow, hand raw pointers to a device's `Kernels` (see bias_act_cpu.cc and bias_act_cuda.cc).
#pragma once

#include <string>

#include "bias_act_args.h"
#include "binding.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "types.h"

namespace twinop::tf_binding {

// The `act` attr as the core's enum; a bad name fails the kernel's construction.
inline Activation act_attr(tensorflow::OpKernelConstruction* ctx) {
  std::string name;
  Activation act{};
  absl::Status status = ctx->GetAttr("act", &name);
  if (status.ok()) status = to_status(parse_activation_arg(name, &act));
  if (!status.ok()) ctx->CtxFailure(status);
  return act;
}

template <typename Kernels>
class BiasActOp : public tensorflow::OpKernel {
 public:
  explicit BiasActOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx), act_(act_attr(ctx)) {}

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& x = ctx->input(0);
    const tensorflow::Tensor& bias = ctx->input(1);
    const TensorInfo x_info = describe(x);
    OP_REQUIRES_OK(ctx, to_status(check_bias_act_args(x_info, describe(bias))));
    tensorflow::Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, allocate_output_in_place<Kernels>(ctx, /*input=x*/ 0, /*output=y*/ 0, x.shape(), &y));
    const Matrix2D m = as_matrix(x_info.shape);
    run_guarded(ctx, [&] {
      Kernels::forward(ctx, x.data(), bias.data(), y->data(), m.rows, m.cols, *x_info.dtype, act_);
    });
  }

 private:
  const Activation act_;
};

template <typename Kernels>
class BiasActGradOp : public tensorflow::OpKernel {
 public:
  explicit BiasActGradOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx), act_(act_attr(ctx)) {}

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& dy = ctx->input(0);
    const tensorflow::Tensor& x = ctx->input(1);
    const tensorflow::Tensor& bias = ctx->input(2);
    const TensorInfo x_info = describe(x);
    OP_REQUIRES_OK(ctx, to_status(check_bias_act_backward_args(describe(dy), x_info, describe(bias))));
    tensorflow::Tensor *dx = nullptr, *dbias = nullptr;
    OP_REQUIRES_OK(ctx, allocate_output_in_place<Kernels>(ctx, /*input=dy*/ 0, /*output=dx*/ 0, x.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, bias.shape(), &dbias));
    const Matrix2D m = as_matrix(x_info.shape);
    run_guarded(ctx, [&] {
      Kernels::backward(ctx, dy.data(), x.data(), bias.data(), dx->data(), dbias->data(), m.rows, m.cols,
                        *x_info.dtype, act_);
    });
  }

 private:
  const Activation act_;
};

// twinop-feature: second-order
template <typename Kernels>
class BiasActGradGradOp : public tensorflow::OpKernel {
 public:
  explicit BiasActGradGradOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx), act_(act_attr(ctx)) {}

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& g = ctx->input(0);
    const tensorflow::Tensor& g_bias = ctx->input(1);
    const tensorflow::Tensor& dy = ctx->input(2);
    const tensorflow::Tensor& x = ctx->input(3);
    const tensorflow::Tensor& bias = ctx->input(4);
    const TensorInfo x_info = describe(x);
    OP_REQUIRES_OK(ctx, to_status(check_bias_act_double_backward_args(describe(g), describe(g_bias), describe(dy), x_info,
                                                             describe(bias))));
    tensorflow::Tensor *d_dy = nullptr, *d_x = nullptr, *d_bias = nullptr;
    OP_REQUIRES_OK(ctx, allocate_output_in_place<Kernels>(ctx, /*input=g*/ 0, /*output=d_dy*/ 0, x.shape(), &d_dy));
    OP_REQUIRES_OK(ctx, allocate_output_in_place<Kernels>(ctx, /*input=dy*/ 2, /*output=d_x*/ 1, x.shape(), &d_x));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, bias.shape(), &d_bias));
    const Matrix2D m = as_matrix(x_info.shape);
    run_guarded(ctx, [&] {
      Kernels::double_backward(ctx, g.data(), g_bias.data(), dy.data(), x.data(), bias.data(), d_dy->data(),
                               d_x->data(), d_bias->data(), m.rows, m.cols, *x_info.dtype, act_);
    });
  }

 private:
  const Activation act_;
};

// twinop-feature: end
// One kernel per op and device serves every T: the kernel reads the dtype at run time, so
// no per-type registration (TypeConstraint) is needed.
#define TWINOP_REGISTER_BIAS_ACT_KERNELS(DEVICE, KERNELS)                \
  REGISTER_KERNEL_BUILDER(Name("Twinop>BiasAct").Device(DEVICE),         \
                          ::twinop::tf_binding::BiasActOp<KERNELS>);     \
  REGISTER_KERNEL_BUILDER(Name("Twinop>BiasActGrad").Device(DEVICE),     \
                          ::twinop::tf_binding::BiasActGradOp<KERNELS>); \
  REGISTER_KERNEL_BUILDER(Name("Twinop>BiasActGradGrad").Device(DEVICE), \
                          ::twinop::tf_binding::BiasActGradGradOp<KERNELS>)

}  // namespace twinop::tf_binding
