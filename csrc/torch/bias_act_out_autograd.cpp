// Autograd for the out= overloads, as for PyTorch's own out= functions: not differentiable (asked
// for a gradient, they say so instead of dropping it), and writing into `out` bumps its version
// counter, so a backward that saved the tensor before it was overwritten fails loudly instead of
// computing with the new values. (torch.library.register_autograd refuses mutating ops.)
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <initializer_list>
#include <tuple>

namespace twinop::torch_binding {
namespace {

void check_no_grad_needed(const char* op_name, std::initializer_list<const at::Tensor*> tensors) {
  if (!c10::GradMode::is_enabled()) return;
  for (const at::Tensor* t : tensors)
    TORCH_CHECK(!t->requires_grad(), op_name, "(): functions with out=... arguments don't support automatic ",
                "differentiation, but one of the arguments requires grad.");
}

at::Tensor& bias_act_out_autograd(const at::Tensor& x, const at::Tensor& bias, c10::string_view act, at::Tensor& out) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("twinop::bias_act", "out")
                             .typed<at::Tensor&(const at::Tensor&, const at::Tensor&, c10::string_view, at::Tensor&)>();
  check_no_grad_needed("bias_act", {&x, &bias, &out});
  {
    const at::AutoDispatchBelowADInplaceOrView below;  // the version bumps below are its bookkeeping
    op.call(x, bias, act, out);
  }
  out.unsafeGetTensorImpl()->bump_version();
  return out;
}

std::tuple<at::Tensor&, at::Tensor&> bias_act_backward_out_autograd(const at::Tensor& dy, const at::Tensor& x,
                                                                    const at::Tensor& bias, c10::string_view act,
                                                                    at::Tensor& dx, at::Tensor& dbias) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("twinop::bias_act_backward", "out")
          .typed<std::tuple<at::Tensor&, at::Tensor&>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                      c10::string_view, at::Tensor&, at::Tensor&)>();
  check_no_grad_needed("bias_act_backward", {&dy, &x, &bias, &dx, &dbias});
  {
    const at::AutoDispatchBelowADInplaceOrView below;  // the version bumps below are its bookkeeping
    op.call(dy, x, bias, act, dx, dbias);
  }
  dx.unsafeGetTensorImpl()->bump_version();
  dbias.unsafeGetTensorImpl()->bump_version();
  return {dx, dbias};
}

}  // namespace
}  // namespace twinop::torch_binding

TORCH_LIBRARY_IMPL(twinop, Autograd, m) {
  m.impl("bias_act.out", &twinop::torch_binding::bias_act_out_autograd);
  m.impl("bias_act_backward.out", &twinop::torch_binding::bias_act_backward_out_autograd);
}
