// Autocast for twinop::bias_act. Without it, autocast falls through to the op, and the usual
// autocast pair (a low-precision x from an autocast nn.Linear, an fp32 bias parameter) raises a
// dtype mismatch. Policy: as nn.Linear's ("lower_precision_fp"), cast both floating inputs on
// the autocast device to the dtype the user chose for that device, then run the op below
// autocast; float64 is left as it is. The backward op gets no autocast kernel, as PyTorch's own
// backward ops: its inputs already share the forward's dtype.
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

namespace twinop::torch_binding {

template <c10::DeviceType device>
at::Tensor bias_act_autocast(const at::Tensor& x, const at::Tensor& bias, c10::string_view act) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("twinop::bias_act", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, c10::string_view)>();
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(at::autocast::get_autocast_dispatch_key_from_device_type(device));
  const at::ScalarType dtype = at::autocast::get_lower_precision_fp_from_device_type(device);
  // cached_cast reuses one cast of an fp32 parameter per autocast region, as for nn.Linear's weight.
  return op.call(at::autocast::cached_cast(dtype, x, device), at::autocast::cached_cast(dtype, bias, device), act);
}

}  // namespace twinop::torch_binding

TORCH_LIBRARY_IMPL(twinop, AutocastCPU, m) {
  m.impl("bias_act", &twinop::torch_binding::bias_act_autocast<c10::DeviceType::CPU>);
}

// Registered in every build (it calls no CUDA code), so a CUDA build needs nothing more.
TORCH_LIBRARY_IMPL(twinop, AutocastCUDA, m) {
  m.impl("bias_act", &twinop::torch_binding::bias_act_autocast<c10::DeviceType::CUDA>);
}
