// The TensorFlow op definitions: attrs, inputs, outputs, and their shape functions
// (bias_act_shapes.cc). Kernels are registered per device in bias_act_kernels.cc and
// bias_act_kernels_gpu.cc; the gradient is registered in python/twinop/tf/_gradient.py.
#include <string>

#include "bias_act_shapes.h"
#include "tensorflow/core/framework/op.h"
#include "types.h"

namespace twinop::tf_binding {
namespace {

// "act: {'gelu', ...} = 'gelu'", from the core's one list of activations.
std::string act_attr() {
  std::string spec = "act: {";
  for (int i = 0; i < kNumActivations; ++i)
    spec += (i ? ", '" : "'") + std::string(kActivationNames[i]) + "'";
  return spec + "} = 'gelu'";
}

}  // namespace

REGISTER_OP("Twinop>BiasAct")
    .Input("x: T")
    .Input("bias: T")
    .Output("y: T")
    .Attr("T: {float, double, half, bfloat16}")
    .Attr(act_attr())
    .SetShapeFn(bias_act_shape)
    .Doc("y = act(x + bias), bias broadcast along the last axis of x.");

REGISTER_OP("Twinop>BiasActGrad")
    .Input("dy: T")
    .Input("x: T")
    .Input("bias: T")
    .Output("dx: T")
    .Output("dbias: T")
    .Attr("T: {float, double, half, bfloat16}")
    .Attr(act_attr())
    .SetShapeFn(bias_act_grad_shape)
    .Doc("dx = dy * act'(x + bias); dbias = dx summed over all axes but the last.");

}  // namespace twinop::tf_binding
