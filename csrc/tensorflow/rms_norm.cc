// RMSNorm as TensorFlow ops: the op definitions and their shape functions, and the CPU kernels
// (the kernel classes are rms_norm_binding.h's; the GPU ones are registered in rms_norm_cuda.cc,
// the gradients in python/twinop/tf/_rms_norm_gradient.py).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "feature_shapes.h"
#include "rms_norm.h"
#include "rms_norm_binding.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace twinop::tf_binding {
namespace {

using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

// The type attrs: T for x (and y, s, dy, ds, dx), W for weight and dweight (T, or float32 for
// half T: mixed precision), U for rstd (the compute type: double for double T, else float).
constexpr const char* kT = "T: {float, double, half, bfloat16}";
constexpr const char* kW = "W: {float, double, half, bfloat16}";
constexpr const char* kU = "U: {float, double}";

// twinop-feature: shapes
TensorInfo typed(std::vector<std::int64_t> shape, tensorflow::DataType type) {
  return {std::move(shape), core_dtype(type), tensorflow::DataTypeString(type)};
}

// The type and float attrs through the core's rules, at graph-construction time: x, weight and
// rstd are described with shapes that agree ([1], [1], []), so the rules judge the dtypes and
// attributes alone (the shapes are checked below, where static).
absl::Status check_attrs(InferenceContext* c, const char* x_name, bool has_eps) {
  tensorflow::DataType t, w, u;
  float eps = 0, offset = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("T", &t));
  TF_RETURN_IF_ERROR(c->GetAttr("W", &w));
  TF_RETURN_IF_ERROR(c->GetAttr("U", &u));
  if (has_eps) TF_RETURN_IF_ERROR(c->GetAttr("eps", &eps));
  TF_RETURN_IF_ERROR(c->GetAttr("offset", &offset));
  const TensorInfo x = typed({1}, t);
  TF_RETURN_IF_ERROR(to_status(check_rms_norm_args(x, typed({1}, w), eps, offset, x_name)));
  return to_status(check_rstd_arg(typed({}, u), x, x_name));
}

// x.shape[:-1], or unknown where x's rank is.
ShapeHandle rows_of(InferenceContext* c, ShapeHandle x) {
  ShapeHandle rows = c->UnknownShape();
  if (c->RankKnown(x)) c->Subshape(x, 0, -1, &rows).IgnoreError();  // rank >= 1: checked first
  return rows;
}

// rstd input `input` must have the shape x.shape[:-1] (x named x_name).
absl::Status check_rstd_shape(InferenceContext* c, int input, ShapeHandle x, const char* x_name) {
  ShapeHandle merged;
  const ShapeHandle rows = rows_of(c, x);
  if (!c->Merge(c->input(input), rows, &merged).ok())
    return absl::InvalidArgumentError(std::string("rstd must have the shape ") + x_name + ".shape[:-1] = " +
                                      c->DebugString(rows) + "; got " + c->DebugString(c->input(input)));
  return absl::OkStatus();
}

// Twinop>RmsNorm: (x, weight) -> (y like x, rstd of x.shape[:-1]); kAdd, Twinop>AddRmsNorm:
// (x, residual, weight) -> (y and s like x and residual, rstd).
template <bool kAdd>
absl::Status forward_shape(InferenceContext* c) {
  TF_RETURN_IF_ERROR(check_attrs(c, "x", /*has_eps=*/true));
  ShapeHandle x;
  TF_RETURN_IF_ERROR(x_shape_with_features(c, /*x_input=*/0, "x", /*row_input=*/kAdd ? 2 : 1, "weight", &x));
  if (kAdd) TF_RETURN_IF_ERROR(merge_like(c, /*input=*/1, "residual", "x", &x));
  for (int output = 0; output + 1 < c->num_outputs(); ++output) c->set_output(output, x);
  c->set_output(c->num_outputs() - 1, rows_of(c, x));
  return absl::OkStatus();
}

// Twinop>RmsNormGrad: (dy, x, rstd, weight) -> (dx like x and dy, dweight like weight); kAdd,
// Twinop>AddRmsNormGrad: (dy, ds, s, rstd, weight), ds like s too.
template <bool kAdd>
absl::Status backward_shape(InferenceContext* c) {
  const char* x_name = kAdd ? "s" : "x";
  const int x_input = kAdd ? 2 : 1, rstd_input = x_input + 1, weight_input = x_input + 2;
  TF_RETURN_IF_ERROR(check_attrs(c, x_name, /*has_eps=*/false));
  ShapeHandle x;
  TF_RETURN_IF_ERROR(x_shape_with_features(c, x_input, x_name, weight_input, "weight", &x));
  TF_RETURN_IF_ERROR(merge_like(c, /*input=*/0, "dy", x_name, &x));
  if (kAdd) TF_RETURN_IF_ERROR(merge_like(c, /*input=*/1, "ds", x_name, &x));
  TF_RETURN_IF_ERROR(check_rstd_shape(c, rstd_input, x, x_name));
  c->set_output(0, x);
  c->set_output(1, c->Vector(features_of(c, x, weight_input)));
  return absl::OkStatus();
}

// twinop-feature: end
}  // namespace

// TensorFlow's float attrs are 32-bit: eps and offset reach the kernels as float32 values.
REGISTER_OP("Twinop>RmsNorm")
    .Input("x: T")
    .Input("weight: W")
    .Output("y: T")
    .Output("rstd: U")
    .Attr(kT)
    .Attr(kW)
    .Attr(std::string(kU) + " = DT_FLOAT")
    .Attr("eps: float = 1e-6")
    .Attr("offset: float = 0")
    .SetShapeFn(forward_shape</*kAdd=*/false>)
    .Doc("y = x * rstd * (weight + offset), rstd = 1 / sqrt(mean(x^2 over the last axis) + eps) per row; "
         "U must be float64 for float64 x, float32 otherwise.");

REGISTER_OP("Twinop>AddRmsNorm")
    .Input("x: T")
    .Input("residual: T")
    .Input("weight: W")
    .Output("y: T")
    .Output("s: T")
    .Output("rstd: U")
    .Attr(kT)
    .Attr(kW)
    .Attr(std::string(kU) + " = DT_FLOAT")
    .Attr("eps: float = 1e-6")
    .Attr("offset: float = 0")
    .SetShapeFn(forward_shape</*kAdd=*/true>)
    .Doc("s = x + residual (rounded to T), and RmsNorm's y and rstd at s, in one pass.");

REGISTER_OP("Twinop>RmsNormGrad")
    .Input("dy: T")
    .Input("x: T")
    .Input("rstd: U")
    .Input("weight: W")
    .Output("dx: T")
    .Output("dweight: W")
    .Attr(kT)
    .Attr(kW)
    .Attr(kU)
    .Attr("offset: float = 0")
    .SetShapeFn(backward_shape</*kAdd=*/false>)
    .Doc("The gradients of RmsNorm's x and weight given dy at y, with the forward's rstd; dweight is summed over "
         "all axes but the last, in an order fixed by the shape.");

REGISTER_OP("Twinop>AddRmsNormGrad")
    .Input("dy: T")
    .Input("ds: T")
    .Input("s: T")
    .Input("rstd: U")
    .Input("weight: W")
    .Output("dx: T")
    .Output("dweight: W")
    .Attr(kT)
    .Attr(kW)
    .Attr(kU)
    .Attr("offset: float = 0")
    .SetShapeFn(backward_shape</*kAdd=*/true>)
    .Doc("AddRmsNorm's gradients given dy at y and ds at s: dx (also d_residual) is RmsNormGrad's at s plus ds.");

// twinop-feature: wrapper
// The core's CPU functions on TensorFlow's intra-op pool; ds, where given, is read in the same pass.
struct RmsNormCpuKernels {
  // twinop-feature: buffer-reuse
  static constexpr bool kRunsInPlace = true;  // each element is read before it is written
  // twinop-feature: wrapper
  static void forward(tensorflow::OpKernelContext* ctx, const RmsNormForward& f) {
    if (f.residual) {
      add_rms_norm_forward_cpu(f.x, f.residual, f.weight, f.y, f.s, f.rstd, f.m.rows, f.m.cols, f.dtype,
                               f.weight_dtype, f.eps, f.offset, tf_parallel_for(ctx));
    } else {
      rms_norm_forward_cpu(f.x, f.weight, f.y, f.rstd, f.m.rows, f.m.cols, f.dtype, f.weight_dtype, f.eps, f.offset,
                           tf_parallel_for(ctx));
    }
  }
  static void backward(tensorflow::OpKernelContext* ctx, const RmsNormBackward& b) {
    if (b.ds) {
      add_rms_norm_backward_cpu(b.dy, b.ds, b.x, b.rstd, b.weight, b.dx, b.dweight, b.m.rows, b.m.cols, b.dtype,
                                b.weight_dtype, b.offset, tf_parallel_for(ctx));
    } else {
      rms_norm_backward_cpu(b.dy, b.x, b.rstd, b.weight, b.dx, b.dweight, b.m.rows, b.m.cols, b.dtype,
                            b.weight_dtype, b.offset, tf_parallel_for(ctx));
    }
  }
};

TWINOP_REGISTER_RMS_NORM_KERNELS(tensorflow::DEVICE_CPU, RmsNormCpuKernels);

}  // namespace twinop::tf_binding
