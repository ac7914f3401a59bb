// Shape functions of the TensorFlow ops: static output shapes from static input shapes, and
// our own messages for what is wrong at graph-construction time.
#include <string>

#include "bias_act_shapes.h"

namespace twinop::tf_binding {
namespace {

using tensorflow::shape_inference::DimensionHandle;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

std::string dim_string(InferenceContext* c, DimensionHandle d) {
  return c->ValueKnown(d) ? std::to_string(c->Value(d)) : "?";
}

// x: rank >= 1; bias: rank 1 with x.shape[-1] elements. Returns x's shape with the feature
// dimension merged from both, so a static size known on either side is inferred.
absl::Status x_shape_with_features(InferenceContext* c, int x_input, int bias_input, ShapeHandle* out) {
  const ShapeHandle x = c->input(x_input), bias = c->input(bias_input);
  if (c->RankKnown(x) && c->Rank(x) == 0)
    return absl::InvalidArgumentError("x must have at least 1 dimension (features last); got a 0-d tensor");
  if (c->RankKnown(bias) && c->Rank(bias) != 1)
    return absl::InvalidArgumentError("bias must be 1-D; got rank " + std::to_string(c->Rank(bias)));
  if (!c->RankKnown(x)) {
    *out = x;
    return absl::OkStatus();
  }
  DimensionHandle features;
  const DimensionHandle x_features = c->Dim(x, -1);
  const DimensionHandle bias_features = c->RankKnown(bias) ? c->Dim(bias, 0) : c->UnknownDim();
  if (!c->Merge(x_features, bias_features, &features).ok())
    return absl::InvalidArgumentError("bias must have x.shape[-1] = " + dim_string(c, x_features) +
                                      " elements; got " + dim_string(c, bias_features));
  return c->ReplaceDim(x, -1, features, out);
}

// `input` must have the shape of x (merged into *x); its message names it.
absl::Status merge_like_x(InferenceContext* c, int input, const char* name, ShapeHandle* x) {
  const ShapeHandle x_before = *x;  // a failed Merge resets its output
  if (!c->Merge(c->input(input), x_before, x).ok())
    return absl::InvalidArgumentError(std::string(name) + " must have the shape of x " + c->DebugString(x_before) +
                                      "; got " + c->DebugString(c->input(input)));
  return absl::OkStatus();
}

// The feature size, known from x (merged with bias) or else from bias alone.
DimensionHandle features_of(InferenceContext* c, ShapeHandle x, int bias_input) {
  const ShapeHandle bias = c->input(bias_input);
  return c->RankKnown(x) ? c->Dim(x, -1) : c->RankKnown(bias) ? c->Dim(bias, 0) : c->UnknownDim();
}

}  // namespace

absl::Status bias_act_shape(InferenceContext* c) {
  ShapeHandle y;
  TF_RETURN_IF_ERROR(x_shape_with_features(c, /*x_input=*/0, /*bias_input=*/1, &y));
  c->set_output(0, y);
  return absl::OkStatus();
}

// Inputs (dy, x, bias) -> (dx shaped like x and dy, dbias shaped like bias).
absl::Status bias_act_grad_shape(InferenceContext* c) {
  ShapeHandle x;
  TF_RETURN_IF_ERROR(x_shape_with_features(c, /*x_input=*/1, /*bias_input=*/2, &x));
  TF_RETURN_IF_ERROR(merge_like_x(c, /*input=*/0, "dy", &x));
  c->set_output(0, x);
  c->set_output(1, c->Vector(features_of(c, x, /*bias_input=*/2)));
  return absl::OkStatus();
}

// twinop-feature: second-order
// Inputs (g, g_bias, dy, x, bias) -> (d_dy, d_x shaped like x, dy and g; d_bias like bias and g_bias).
absl::Status bias_act_grad_grad_shape(InferenceContext* c) {
  ShapeHandle x;
  TF_RETURN_IF_ERROR(x_shape_with_features(c, /*x_input=*/3, /*bias_input=*/4, &x));
  TF_RETURN_IF_ERROR(merge_like_x(c, /*input=*/2, "dy", &x));
  TF_RETURN_IF_ERROR(merge_like_x(c, /*input=*/0, "g", &x));
  const ShapeHandle bias_shape = c->Vector(features_of(c, x, /*bias_input=*/4));
  ShapeHandle bias;
  if (!c->Merge(c->input(1), bias_shape, &bias).ok())
    return absl::InvalidArgumentError("g_bias must have the shape of bias " + c->DebugString(bias_shape) +
                                      "; got " + c->DebugString(c->input(1)));
  c->set_output(0, x);
  c->set_output(1, x);
  c->set_output(2, bias);
  return absl::OkStatus();
}

// twinop-feature: end
}  // namespace twinop::tf_binding
