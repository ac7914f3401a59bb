// Shape-function pieces every op shares (feature_shapes.h).
#include "feature_shapes.h"

#include <string>

namespace twinop::tf_binding {
namespace {

using tensorflow::shape_inference::DimensionHandle;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

std::string dim_string(InferenceContext* c, DimensionHandle d) {
  return c->ValueKnown(d) ? std::to_string(c->Value(d)) : "?";
}

}  // namespace

absl::Status x_shape_with_features(InferenceContext* c, int x_input, const char* x_name, int row_input,
                                   const char* row_name, ShapeHandle* out) {
  const ShapeHandle x = c->input(x_input), row = c->input(row_input);
  if (c->RankKnown(x) && c->Rank(x) == 0)
    return absl::InvalidArgumentError(std::string(x_name) +
                                      " must have at least 1 dimension (features last); got a 0-d tensor");
  if (c->RankKnown(row) && c->Rank(row) != 1)
    return absl::InvalidArgumentError(std::string(row_name) + " must be 1-D; got rank " + std::to_string(c->Rank(row)));
  if (!c->RankKnown(x)) {
    *out = x;
    return absl::OkStatus();
  }
  DimensionHandle features;
  const DimensionHandle x_features = c->Dim(x, -1);
  const DimensionHandle row_features = c->RankKnown(row) ? c->Dim(row, 0) : c->UnknownDim();
  if (!c->Merge(x_features, row_features, &features).ok())
    return absl::InvalidArgumentError(std::string(row_name) + " must have " + x_name + ".shape[-1] = " +
                                      dim_string(c, x_features) + " elements; got " + dim_string(c, row_features));
  return c->ReplaceDim(x, -1, features, out);
}

absl::Status merge_like(InferenceContext* c, int input, const char* name, const char* like_name, ShapeHandle* like) {
  const ShapeHandle before = *like;  // a failed Merge resets its output
  if (!c->Merge(c->input(input), before, like).ok())
    return absl::InvalidArgumentError(std::string(name) + " must have the shape of " + like_name + " " +
                                      c->DebugString(before) + "; got " + c->DebugString(c->input(input)));
  return absl::OkStatus();
}

DimensionHandle features_of(InferenceContext* c, ShapeHandle x, int row_input) {
  const ShapeHandle row = c->input(row_input);
  return c->RankKnown(x) ? c->Dim(x, -1) : c->RankKnown(row) ? c->Dim(row, 0) : c->UnknownDim();
}

}  // namespace twinop::tf_binding
