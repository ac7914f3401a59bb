// RMSNorm as PyTorch ops: the schemas, the argument checks (rms_norm_args.h, through binding.h),
// the CPU and CUDA kernels behind one template per op, and autocast. Fake kernels, autograd and
// batching rules are registered in Python (python/twinop/torch/_rms_norm_ops.py).
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "binding.h"
#include "rms_norm.h"
#include "rms_norm_args.h"
#include "types.h"
#if defined(TWINOP_WITH_CUDA)
#include "rms_norm_cuda.h"
#endif

// twinop-feature: registration
TORCH_LIBRARY_FRAGMENT(twinop, m) {
  // Returns (y, rstd): rstd = 1 / sqrt(mean(x^2) + eps) per row, float32 (float64 for float64
  // x), shaped x.shape[:-1]; the backward takes it instead of recomputing it.
  m.def("rms_norm(Tensor x, Tensor weight, float eps, float offset) -> (Tensor, Tensor)");
  // Returns (y, s, rstd): s = x + residual, and rms_norm's y and rstd at s.
  m.def("add_rms_norm(Tensor x, Tensor residual, Tensor weight, float eps, float offset) -> (Tensor, Tensor, Tensor)");
  // Returns (dx, dweight).
  m.def("rms_norm_backward(Tensor dy, Tensor x, Tensor rstd, Tensor weight, float offset) -> (Tensor, Tensor)");
  // ds: the gradient arriving at add_rms_norm's s. Returns (dx, dweight); dx is also d_residual.
  m.def("add_rms_norm_backward(Tensor dy, Tensor ds, Tensor s, Tensor rstd, Tensor weight, float offset) "
        "-> (Tensor, Tensor)");
}

// twinop-feature: end
namespace twinop::torch_binding {

constexpr const char* kRmsNorm = "twinop.rms_norm";

// Validated, contiguous inputs in the core's terms. The forward args serve rms_norm (no
// residual) and add_rms_norm; the backward args serve both backward ops (ds only for the latter).
struct RmsNormArgs {
  at::Tensor x, residual, weight;
  Matrix2D matrix;
  DType dtype, weight_dtype;
  double eps, offset;
};

struct RmsNormBackwardArgs {
  at::Tensor dy, ds, x, rstd, weight;
  Matrix2D matrix;
  DType dtype, weight_dtype;
  double offset;
};

RmsNormArgs rms_norm_args(const at::Tensor& x, const at::Tensor* residual, const at::Tensor& weight, double eps,
                          double offset) {
  if (residual) {
    throw_if_error(kRmsNorm, check_add_rms_norm_args(describe(x), describe(*residual), describe(weight), eps, offset));
    check_tensors(kRmsNorm, {{&x, "x"}, {&weight, "weight"}, {residual, "residual"}});
  } else {
    throw_if_error(kRmsNorm, check_rms_norm_args(describe(x), describe(weight), eps, offset));
    check_tensors(kRmsNorm, {{&x, "x"}, {&weight, "weight"}});
  }
  return {x.contiguous(), residual ? residual->contiguous() : at::Tensor(), weight.contiguous(),
          as_matrix(x.sizes().vec()), *core_dtype(x.scalar_type()), *core_dtype(weight.scalar_type()), eps, offset};
}

RmsNormBackwardArgs rms_norm_backward_args(const at::Tensor& dy, const at::Tensor* ds, const at::Tensor& x,
                                           const at::Tensor& rstd, const at::Tensor& weight, double offset) {
  if (ds) {
    throw_if_error(kRmsNorm, check_add_rms_norm_backward_args(describe(dy), describe(*ds), describe(x), describe(rstd),
                                                              describe(weight), offset));
    check_tensors(kRmsNorm, {{&x, "s"}, {&weight, "weight"}, {&rstd, "rstd"}, {&dy, "dy"}, {ds, "ds"}});
  } else {
    throw_if_error(kRmsNorm,
                   check_rms_norm_backward_args(describe(dy), describe(x), describe(rstd), describe(weight), offset));
    check_tensors(kRmsNorm, {{&x, "x"}, {&weight, "weight"}, {&rstd, "rstd"}, {&dy, "dy"}});
  }
  return {dy.contiguous(), ds ? ds->contiguous() : at::Tensor(), x.contiguous(), rstd.contiguous(),
          weight.contiguous(), as_matrix(x.sizes().vec()), *core_dtype(x.scalar_type()),
          *core_dtype(weight.scalar_type()), offset};
}

// rstd: x.shape[:-1] in the compute type.
at::Tensor empty_rstd(const at::Tensor& x) {
  const std::vector<std::int64_t> rows(x.sizes().begin(), x.sizes().end() - 1);
  return at::empty(rows, x.options().dtype(x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat));
}

template <typename Kernels>
std::tuple<at::Tensor, at::Tensor> rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps,
                                            double offset) {
  const RmsNormArgs args = rms_norm_args(x, nullptr, weight, eps, offset);
  const c10::DeviceGuard guard(args.x.device());
  at::Tensor y = at::empty_like(args.x);
  at::Tensor rstd = empty_rstd(args.x);
  Kernels::forward(args, y, rstd);
  return {y, rstd};
}

template <typename Kernels>
std::tuple<at::Tensor, at::Tensor, at::Tensor> add_rms_norm(const at::Tensor& x, const at::Tensor& residual,
                                                            const at::Tensor& weight, double eps, double offset) {
  const RmsNormArgs args = rms_norm_args(x, &residual, weight, eps, offset);
  const c10::DeviceGuard guard(args.x.device());
  at::Tensor y = at::empty_like(args.x);
  at::Tensor s = at::empty_like(args.x);
  at::Tensor rstd = empty_rstd(args.x);
  Kernels::add_forward(args, y, s, rstd);
  return {y, s, rstd};
}

template <typename Kernels>
std::tuple<at::Tensor, at::Tensor> rms_norm_backward(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& rstd,
                                                     const at::Tensor& weight, double offset) {
  const RmsNormBackwardArgs args = rms_norm_backward_args(dy, nullptr, x, rstd, weight, offset);
  const c10::DeviceGuard guard(args.x.device());
  at::Tensor dx = at::empty_like(args.x);
  at::Tensor dweight = at::empty_like(args.weight);
  Kernels::backward(args, dx, dweight);
  return {dx, dweight};
}

template <typename Kernels>
std::tuple<at::Tensor, at::Tensor> add_rms_norm_backward(const at::Tensor& dy, const at::Tensor& ds,
                                                         const at::Tensor& s, const at::Tensor& rstd,
                                                         const at::Tensor& weight, double offset) {
  const RmsNormBackwardArgs args = rms_norm_backward_args(dy, &ds, s, rstd, weight, offset);
  const c10::DeviceGuard guard(args.x.device());
  at::Tensor dx = at::empty_like(args.x);
  at::Tensor dweight = at::empty_like(args.weight);
  Kernels::backward(args, dx, dweight);
  return {dx, dweight};
}

// ds, where given, is an input of the same pass: add_rms_norm_backward_cpu, else rms_norm's.
struct RmsNormCpuKernels {
  static void forward(const RmsNormArgs& a, at::Tensor& y, at::Tensor& rstd) {
    rms_norm_forward_cpu(a.x.const_data_ptr(), a.weight.const_data_ptr(), y.mutable_data_ptr(),
                         rstd.mutable_data_ptr(), a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype, a.eps,
                         a.offset, torch_parallel_for);
  }
  static void add_forward(const RmsNormArgs& a, at::Tensor& y, at::Tensor& s, at::Tensor& rstd) {
    add_rms_norm_forward_cpu(a.x.const_data_ptr(), a.residual.const_data_ptr(), a.weight.const_data_ptr(),
                             y.mutable_data_ptr(), s.mutable_data_ptr(), rstd.mutable_data_ptr(), a.matrix.rows,
                             a.matrix.cols, a.dtype, a.weight_dtype, a.eps, a.offset, torch_parallel_for);
  }
  static void backward(const RmsNormBackwardArgs& a, at::Tensor& dx, at::Tensor& dweight) {
    if (a.ds.defined()) {
      add_rms_norm_backward_cpu(a.dy.const_data_ptr(), a.ds.const_data_ptr(), a.x.const_data_ptr(),
                                a.rstd.const_data_ptr(), a.weight.const_data_ptr(), dx.mutable_data_ptr(),
                                dweight.mutable_data_ptr(), a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype,
                                a.offset, torch_parallel_for);
    } else {
      rms_norm_backward_cpu(a.dy.const_data_ptr(), a.x.const_data_ptr(), a.rstd.const_data_ptr(),
                            a.weight.const_data_ptr(), dx.mutable_data_ptr(), dweight.mutable_data_ptr(),
                            a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype, a.offset, torch_parallel_for);
    }
  }
};

#if defined(TWINOP_WITH_CUDA)
struct RmsNormCudaKernels {
  static void forward(const RmsNormArgs& a, at::Tensor& y, at::Tensor& rstd) {
    rms_norm_forward_cuda(a.x.const_data_ptr(), a.weight.const_data_ptr(), y.mutable_data_ptr(),
                          rstd.mutable_data_ptr(), a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype, a.eps,
                          a.offset, current_stream(a.x));
  }
  static void add_forward(const RmsNormArgs& a, at::Tensor& y, at::Tensor& s, at::Tensor& rstd) {
    add_rms_norm_forward_cuda(a.x.const_data_ptr(), a.residual.const_data_ptr(), a.weight.const_data_ptr(),
                              y.mutable_data_ptr(), s.mutable_data_ptr(), rstd.mutable_data_ptr(), a.matrix.rows,
                              a.matrix.cols, a.dtype, a.weight_dtype, a.eps, a.offset, current_stream(a.x));
  }
  static void backward(const RmsNormBackwardArgs& a, at::Tensor& dx, at::Tensor& dweight) {
    at::Tensor workspace =
        workspace_like(a.x, rms_norm_cuda_workspace_bytes(a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype));
    if (a.ds.defined()) {
      add_rms_norm_backward_cuda(a.dy.const_data_ptr(), a.ds.const_data_ptr(), a.x.const_data_ptr(),
                                 a.rstd.const_data_ptr(), a.weight.const_data_ptr(), dx.mutable_data_ptr(),
                                 dweight.mutable_data_ptr(), workspace.mutable_data_ptr(), workspace.numel(),
                                 a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype, a.offset,
                                 current_stream(a.x));
    } else {
      rms_norm_backward_cuda(a.dy.const_data_ptr(), a.x.const_data_ptr(), a.rstd.const_data_ptr(),
                             a.weight.const_data_ptr(), dx.mutable_data_ptr(), dweight.mutable_data_ptr(),
                             workspace.mutable_data_ptr(), workspace.numel(), a.matrix.rows, a.matrix.cols, a.dtype,
                             a.weight_dtype, a.offset, current_stream(a.x));
    }
  }
};
#endif

// twinop-feature: mixed-precision
// Autocast on CUDA, torch.nn.functional.rms_norm's policy there: float32, the floating inputs cast
// to it (so the outputs are float32 too). On the CPU, as for F.rms_norm, autocast leaves the op alone:
// a bfloat16 x with a float32 weight runs as it is, mixed.
std::tuple<at::Tensor, at::Tensor> rms_norm_autocast_cuda(const at::Tensor& x, const at::Tensor& weight, double eps,
                                                          double offset) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("twinop::rms_norm", "")
                             .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double,
                                                                       double)>();
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCUDA);
  const auto cuda = c10::DeviceType::CUDA;
  return op.call(at::autocast::cached_cast(at::kFloat, x, cuda), at::autocast::cached_cast(at::kFloat, weight, cuda),
                 eps, offset);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> add_rms_norm_autocast_cuda(const at::Tensor& x,
                                                                          const at::Tensor& residual,
                                                                          const at::Tensor& weight, double eps,
                                                                          double offset) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("twinop::add_rms_norm", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                const at::Tensor&, double, double)>();
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCUDA);
  const auto cuda = c10::DeviceType::CUDA;
  return op.call(at::autocast::cached_cast(at::kFloat, x, cuda), at::autocast::cached_cast(at::kFloat, residual, cuda),
                 at::autocast::cached_cast(at::kFloat, weight, cuda), eps, offset);
}

// twinop-feature: end
}  // namespace twinop::torch_binding

// twinop-feature: registration
TORCH_LIBRARY_IMPL(twinop, CPU, m) {
  using twinop::torch_binding::RmsNormCpuKernels;
  m.impl("rms_norm", &twinop::torch_binding::rms_norm<RmsNormCpuKernels>);
  m.impl("add_rms_norm", &twinop::torch_binding::add_rms_norm<RmsNormCpuKernels>);
  m.impl("rms_norm_backward", &twinop::torch_binding::rms_norm_backward<RmsNormCpuKernels>);
  m.impl("add_rms_norm_backward", &twinop::torch_binding::add_rms_norm_backward<RmsNormCpuKernels>);
}

#if defined(TWINOP_WITH_CUDA)
TORCH_LIBRARY_IMPL(twinop, CUDA, m) {
  using twinop::torch_binding::RmsNormCudaKernels;
  m.impl("rms_norm", &twinop::torch_binding::rms_norm<RmsNormCudaKernels>);
  m.impl("add_rms_norm", &twinop::torch_binding::add_rms_norm<RmsNormCudaKernels>);
  m.impl("rms_norm_backward", &twinop::torch_binding::rms_norm_backward<RmsNormCudaKernels>);
  m.impl("add_rms_norm_backward", &twinop::torch_binding::add_rms_norm_backward<RmsNormCudaKernels>);
}
#endif

// twinop-feature: mixed-precision
// Registered in every build (it calls no CUDA code), so a CUDA build needs nothing more.
TORCH_LIBRARY_IMPL(twinop, AutocastCUDA, m) {
  m.impl("rms_norm", &twinop::torch_binding::rms_norm_autocast_cuda);
  m.impl("add_rms_norm", &twinop::torch_binding::add_rms_norm_autocast_cuda);
}
