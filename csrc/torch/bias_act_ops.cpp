// The PyTorch op schemas. Kernels are registered per device in bias_act_cpu.cpp and
// bias_act_cuda.cpp; fake kernels and autograd are registered in python/twinop/torch.py.
#include <torch/library.h>

TORCH_LIBRARY(twinop, m) {
  m.def("bias_act(Tensor x, Tensor bias, str act) -> Tensor");
  m.def("bias_act_backward(Tensor dy, Tensor x, Tensor bias, str act) -> (Tensor, Tensor)");
}
