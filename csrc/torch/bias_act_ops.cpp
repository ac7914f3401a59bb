// The PyTorch op schemas. Kernels are registered per device in bias_act_cpu.cpp and
// bias_act_cuda.cpp, autocast in bias_act_autocast.cpp; fake kernels and autograd in
// python/twinop/torch/.
#include <torch/library.h>

TORCH_LIBRARY(twinop, m) {
  m.def("bias_act(Tensor x, Tensor bias, str act) -> Tensor");
  m.def("bias_act_backward(Tensor dy, Tensor x, Tensor bias, str act) -> (Tensor, Tensor)");
  // twinop-feature: second-order
  // g: the gradient arriving at dx, g_bias: at dbias. Returns (d_dy, d_x, d_bias).
  m.def("bias_act_double_backward(Tensor g, Tensor g_bias, Tensor dy, Tensor x, Tensor bias, str act) "
        "-> (Tensor, Tensor, Tensor)");
  // twinop-feature: out
  // out= overloads, as PyTorch's own: write into the caller's tensors; not differentiable.
  m.def("bias_act.out(Tensor x, Tensor bias, str act, *, Tensor(a!) out) -> Tensor(a!)");
  m.def("bias_act_backward.out(Tensor dy, Tensor x, Tensor bias, str act, *, Tensor(a!) dx, Tensor(b!) dbias) "
        "-> (Tensor(a!), Tensor(b!))");
  // twinop-feature: end
}
