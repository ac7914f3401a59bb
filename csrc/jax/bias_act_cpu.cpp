// The CPU handlers: the core's CPU functions behind bias_act_binding.h's handler templates, their chunks
// on XLA's intra-op thread pool.
#include "bias_act.h"
#include "bias_act_binding.h"
#include "bias_act_ops.h"
#include "xla_parallel_for.h"

namespace twinop::jax_binding {
namespace {

struct CpuKernels {
  ffi::ThreadPool& pool;

  ffi::Error forward(const void* x, const void* bias, void* y, std::int64_t rows, std::int64_t cols, DType dtype,
                     Activation act) const {
    bias_act_forward_cpu(x, bias, y, rows, cols, dtype, act, xla_parallel_for(pool));
    return ffi::Error::Success();
  }
  ffi::Error backward(const void* dy, const void* x, const void* bias, void* dx, void* dbias, std::int64_t rows,
                      std::int64_t cols, DType dtype, Activation act) const {
    bias_act_backward_cpu(dy, x, bias, dx, dbias, rows, cols, dtype, act, xla_parallel_for(pool));
    return ffi::Error::Success();
  }
  // twinop-feature: second-order
  ffi::Error double_backward(const void* g, const void* g_bias, const void* dy, const void* x, const void* bias,
                             void* d_dy, void* d_x, void* d_bias, std::int64_t rows, std::int64_t cols, DType dtype,
                             Activation act) const {
    bias_act_double_backward_cpu(g, g_bias, dy, x, bias, d_dy, d_x, d_bias, rows, cols, dtype, act,
                                 xla_parallel_for(pool));
    return ffi::Error::Success();
  }
  // twinop-feature: end
};

ffi::Error forward(ffi::ThreadPool pool, std::string_view act, ffi::AnyBuffer x, ffi::AnyBuffer bias,
                   ffi::Result<ffi::AnyBuffer> y) {
  return bias_act(CpuKernels{pool}, act, x, bias, y);
}

ffi::Error backward(ffi::ThreadPool pool, std::string_view act, ffi::AnyBuffer dy, ffi::AnyBuffer x,
                    ffi::AnyBuffer bias, ffi::Result<ffi::AnyBuffer> dx, ffi::Result<ffi::AnyBuffer> dbias) {
  return bias_act_backward(CpuKernels{pool}, act, dy, x, bias, dx, dbias);
}

// twinop-feature: second-order
ffi::Error double_backward(ffi::ThreadPool pool, std::string_view act, ffi::AnyBuffer g, ffi::AnyBuffer g_bias,
                           ffi::AnyBuffer dy, ffi::AnyBuffer x, ffi::AnyBuffer bias, ffi::Result<ffi::AnyBuffer> d_dy,
                           ffi::Result<ffi::AnyBuffer> d_x, ffi::Result<ffi::AnyBuffer> d_bias) {
  return bias_act_double_backward(CpuKernels{pool}, act, g, g_bias, dy, x, bias, d_dy, d_x, d_bias);
}

// twinop-feature: end
}  // namespace
}  // namespace twinop::jax_binding

namespace jb = twinop::jax_binding;

XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopBiasActCpu, jb::forward,
                              jb::forward_signature(jb::cpu_context()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopBiasActBackwardCpu, jb::backward,
                              jb::backward_signature(jb::cpu_context()));
// twinop-feature: second-order
XLA_FFI_DEFINE_HANDLER_SYMBOL(TwinopBiasActDoubleBackwardCpu, jb::double_backward,
                              jb::double_backward_signature(jb::cpu_context()));
