// RMSNorm's TensorFlow kernels, written once for every device: validate with the core's rules
// (rms_norm_args.h), allocate outputs with TensorFlow, hand one call's pointers to a device's
// `Kernels` (rms_norm.cc for the CPU, rms_norm_cuda.cc).
#pragma once

#include "binding.h"
#include "rms_norm_args.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "types.h"

namespace twinop::tf_binding {

// One forward call: residual and s are null for rms_norm.
struct RmsNormForward {
  const void *x, *residual, *weight;
  void *y, *s, *rstd;
  Matrix2D m;
  DType dtype, weight_dtype;
  double eps, offset;
};

// One backward call: ds is null for rms_norm's; x is add_rms_norm's s.
struct RmsNormBackward {
  const void *dy, *ds, *x, *rstd, *weight;
  void *dx, *dweight;
  Matrix2D m;
  DType dtype, weight_dtype;
  double offset;
};

// A float attr (eps, offset: 32-bit in TensorFlow) as the core takes it; a missing one fails the
// kernel's construction. Its value is checked with the tensors (check_rms_norm_args).
inline double float_attr(tensorflow::OpKernelConstruction* ctx, const char* name) {
  float value = 0;
  const absl::Status status = ctx->GetAttr(name, &value);
  if (!status.ok()) ctx->CtxFailure(status);
  return value;
}

// rstd, output `output`: x.shape[:-1], of the op's U attr, which must be the compute type.
inline absl::Status allocate_rstd(tensorflow::OpKernelContext* ctx, int output, const tensorflow::Tensor& x,
                                  const TensorInfo& x_info, const char* x_name, tensorflow::Tensor** rstd) {
  tensorflow::TensorShape rows = x.shape();
  rows.RemoveLastDims(1);
  const tensorflow::DataType type = ctx->expected_output_dtype(output);
  const auto dims = rows.dim_sizes();
  TF_RETURN_IF_ERROR(to_status(check_rstd_arg({{dims.begin(), dims.end()}, core_dtype(type),
                                               tensorflow::DataTypeString(type)}, x_info, x_name)));
  return ctx->allocate_output(output, rows, rstd);
}

// Twinop>RmsNorm (x, weight -> y, rstd) and, kAdd, Twinop>AddRmsNorm (x, residual, weight -> y, s, rstd).
template <typename Kernels, bool kAdd>
class RmsNormOp : public tensorflow::OpKernel {
 public:
  explicit RmsNormOp(tensorflow::OpKernelConstruction* ctx)
      : OpKernel(ctx), eps_(float_attr(ctx, "eps")), offset_(float_attr(ctx, "offset")) {}

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& x = ctx->input(0);
    const tensorflow::Tensor* residual = kAdd ? &ctx->input(1) : nullptr;
    const tensorflow::Tensor& weight = ctx->input(kAdd ? 2 : 1);
    const TensorInfo x_info = describe(x), weight_info = describe(weight);
    OP_REQUIRES_OK(ctx, to_status(kAdd ? check_add_rms_norm_args(x_info, describe(*residual), weight_info, eps_, offset_)
                                       : check_rms_norm_args(x_info, weight_info, eps_, offset_)));
    tensorflow::Tensor *y = nullptr, *s = nullptr, *rstd = nullptr;
    OP_REQUIRES_OK(ctx, allocate_output_in_place<Kernels>(ctx, /*input=x*/ 0, /*output=y*/ 0, x.shape(), &y));
    if (kAdd) {  // s may take residual's buffer: it is formed from x and residual, then y from s
      OP_REQUIRES_OK(ctx, allocate_output_in_place<Kernels>(ctx, /*input=residual*/ 1, /*output=s*/ 1, x.shape(), &s));
    }
    OP_REQUIRES_OK(ctx, allocate_rstd(ctx, /*output=*/kAdd ? 2 : 1, x, x_info, "x", &rstd));
    run_guarded(ctx, [&] {
      Kernels::forward(ctx, {x.data(), kAdd ? residual->data() : nullptr, weight.data(), y->data(),
                            kAdd ? s->data() : nullptr, rstd->data(), as_matrix(x_info.shape), *x_info.dtype,
                            *weight_info.dtype, eps_, offset_});
    });
  }

 private:
  const double eps_, offset_;
};

// Twinop>RmsNormGrad (dy, x, rstd, weight -> dx, dweight) and, kAdd, Twinop>AddRmsNormGrad (dy, ds,
// s, rstd, weight -> dx, dweight).
template <typename Kernels, bool kAdd>
class RmsNormGradOp : public tensorflow::OpKernel {
 public:
  explicit RmsNormGradOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx), offset_(float_attr(ctx, "offset")) {}

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const int x_input = kAdd ? 2 : 1;
    const tensorflow::Tensor& dy = ctx->input(0);
    const tensorflow::Tensor* ds = kAdd ? &ctx->input(1) : nullptr;
    const tensorflow::Tensor& x = ctx->input(x_input);
    const tensorflow::Tensor& rstd = ctx->input(x_input + 1);
    const tensorflow::Tensor& weight = ctx->input(x_input + 2);
    const TensorInfo x_info = describe(x), weight_info = describe(weight);
    OP_REQUIRES_OK(ctx, to_status(kAdd ? check_add_rms_norm_backward_args(describe(dy), describe(*ds), x_info,
                                                                          describe(rstd), weight_info, offset_)
                                       : check_rms_norm_backward_args(describe(dy), x_info, describe(rstd),
                                                                      weight_info, offset_)));
    tensorflow::Tensor *dx = nullptr, *dweight = nullptr;
    OP_REQUIRES_OK(ctx, allocate_output_in_place<Kernels>(ctx, /*input=dy*/ 0, /*output=dx*/ 0, x.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, weight.shape(), &dweight));
    run_guarded(ctx, [&] {
      Kernels::backward(ctx, {dy.data(), kAdd ? ds->data() : nullptr, x.data(), rstd.data(), weight.data(), dx->data(),
                             dweight->data(), as_matrix(x_info.shape), *x_info.dtype, *weight_info.dtype, offset_});
    });
  }

 private:
  const double offset_;
};

// One kernel per op and device serves every T and W: the kernel reads the dtypes at run time.
#define TWINOP_REGISTER_RMS_NORM_KERNELS(DEVICE, KERNELS)                                                            \
  REGISTER_KERNEL_BUILDER(Name("Twinop>RmsNorm").Device(DEVICE), ::twinop::tf_binding::RmsNormOp<KERNELS, false>);   \
  REGISTER_KERNEL_BUILDER(Name("Twinop>AddRmsNorm").Device(DEVICE), ::twinop::tf_binding::RmsNormOp<KERNELS, true>); \
  REGISTER_KERNEL_BUILDER(Name("Twinop>RmsNormGrad").Device(DEVICE),                                                 \
                          ::twinop::tf_binding::RmsNormGradOp<KERNELS, false>);                                      \
  REGISTER_KERNEL_BUILDER(Name("Twinop>AddRmsNormGrad").Device(DEVICE),                                              \
                          ::twinop::tf_binding::RmsNormGradOp<KERNELS, true>)

}  // namespace twinop::tf_binding
