// Shape functions of bias_act's TensorFlow ops: static output shapes from static input shapes, and
// our own messages for what is wrong at graph-construction time (feature_shapes.h).
#include <string>

#include "bias_act_shapes.h"
#include "feature_shapes.h"

namespace twinop::tf_binding {

using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

absl::Status bias_act_shape(InferenceContext* c) {
  ShapeHandle y;
  TF_RETURN_IF_ERROR(x_shape_with_features(c, /*x_input=*/0, "x", /*row_input=*/1, "bias", &y));
  c->set_output(0, y);
  return absl::OkStatus();
}

// Inputs (dy, x, bias) -> (dx shaped like x and dy, dbias shaped like bias).
absl::Status bias_act_grad_shape(InferenceContext* c) {
  ShapeHandle x;
  TF_RETURN_IF_ERROR(x_shape_with_features(c, /*x_input=*/1, "x", /*row_input=*/2, "bias", &x));
  TF_RETURN_IF_ERROR(merge_like(c, /*input=*/0, "dy", "x", &x));
  c->set_output(0, x);
  c->set_output(1, c->Vector(features_of(c, x, /*row_input=*/2)));
  return absl::OkStatus();
}

// twinop-feature: second-order
// Inputs (g, g_bias, dy, x, bias) -> (d_dy, d_x shaped like x, dy and g; d_bias like bias and g_bias).
absl::Status bias_act_grad_grad_shape(InferenceContext* c) {
  ShapeHandle x;
  TF_RETURN_IF_ERROR(x_shape_with_features(c, /*x_input=*/3, "x", /*row_input=*/4, "bias", &x));
  TF_RETURN_IF_ERROR(merge_like(c, /*input=*/2, "dy", "x", &x));
  TF_RETURN_IF_ERROR(merge_like(c, /*input=*/0, "g", "x", &x));
  const ShapeHandle bias_shape = c->Vector(features_of(c, x, /*row_input=*/4));
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
