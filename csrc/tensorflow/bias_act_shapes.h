// Shape functions of Twinop>BiasAct and Twinop>BiasActGrad (see bias_act_ops.cc).
#pragma once

#include "tensorflow/core/framework/shape_inference.h"

namespace twinop::tf_binding {

// x: rank >= 1, bias: rank 1 with x.shape[-1] elements -> y shaped like x.
absl::Status bias_act_shape(tensorflow::shape_inference::InferenceContext* c);

// (dy, x, bias) -> (dx shaped like x and dy, dbias shaped like bias).
absl::Status bias_act_grad_shape(tensorflow::shape_inference::InferenceContext* c);

// twinop-feature: second-order
// (g, g_bias, dy, x, bias) -> (d_dy and d_x shaped like x, dy and g; d_bias shaped like bias and g_bias).
absl::Status bias_act_grad_grad_shape(tensorflow::shape_inference::InferenceContext* c);

// twinop-feature: end
}  // namespace twinop::tf_binding
