// The TensorFlow op definitions: attrs, inputs, outputs, and their shape functions
// (bias_act_shapes.cc). Kernels are registered per device in bias_act_cpu.cc and
// bias_act_cuda.cc; the gradients are registered in python/twinop/tf/_gradient.py.
#include <string>

#include "bias_act_shapes.h"
#include "tensorflow/core/framework/common_shape_fns.h"
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

// twinop-feature: second-order
// The gradient of BiasActGrad, for second-order autodiff (python/twinop/tf/_gradient.py).
REGISTER_OP("Twinop>BiasActGradGrad")
    .Input("g: T")
    .Input("g_bias: T")
    .Input("dy: T")
    .Input("x: T")
    .Input("bias: T")
    .Output("d_dy: T")
    .Output("d_x: T")
    .Output("d_bias: T")
    .Attr("T: {float, double, half, bfloat16}")
    .Attr(act_attr())
    .SetShapeFn(bias_act_grad_grad_shape)
    .Doc("With v = x + bias and G = g + g_bias: d_dy = G * act'(v), d_x = G * dy * act''(v), d_bias = d_x "
         "summed over all axes but the last.");

// twinop-feature: forward-mode
// Stands for the one term of BiasActGradGrad's gradient that needs act''' (third_order_kernel.cc).
REGISTER_OP("Twinop>ThirdOrderTerm")
    .Input("factor: T")
    .Output("zeros: T")
    .Attr("T: {float, double, half, bfloat16}")
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape)
    .Doc("Zeros shaped like factor if factor is all zeros, else an error: third-order derivatives are not "
         "supported.");

// twinop-feature: end
}  // namespace twinop::tf_binding
