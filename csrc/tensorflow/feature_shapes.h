// Shape-function pieces every op shares: an x with its features last, a per-feature row input
// (bias, weight) of x.shape[-1] elements, and inputs shaped like x; our own messages for what is
// wrong at graph-construction time.
#pragma once

#include "tensorflow/core/framework/shape_inference.h"

namespace twinop::tf_binding {

// x (named x_name): rank >= 1; the row input (row_name): rank 1 with x.shape[-1] elements. *out:
// x's shape with the feature dimension merged from both, so a static size known on either side
// is inferred.
absl::Status x_shape_with_features(tensorflow::shape_inference::InferenceContext* c, int x_input, const char* x_name,
                                   int row_input, const char* row_name, tensorflow::shape_inference::ShapeHandle* out);

// `input` (named name) must have the shape of *like (named like_name), merged into *like.
absl::Status merge_like(tensorflow::shape_inference::InferenceContext* c, int input, const char* name,
                        const char* like_name, tensorflow::shape_inference::ShapeHandle* like);

// The feature size, known from x (merged with the row input) or else from the row input alone.
tensorflow::shape_inference::DimensionHandle features_of(tensorflow::shape_inference::InferenceContext* c,
                                                         tensorflow::shape_inference::ShapeHandle x, int row_input);

}  // namespace twinop::tf_binding
