// RMSNorm as PyTorch ops on the LibTorch stable ABI: csrc/torch/rms_norm.cpp's job (the schemas, the
// argument checks (rms_norm_args.h, through binding.h), the CPU and CUDA kernels behind one template
// per op) through torch/csrc/stable/ alone. Fake kernels, autograd and batching rules are registered
// in Python (python/twinop/torch/_rms_norm_ops.py) and serve both libraries; so are the dual-tensor
// refusal (_dual_check.py) and autocast (_autocast.py), which the stable API has no C++ for.
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include <tuple>
#include <vector>

#include "binding.h"
#include "rms_norm.h"
#include "rms_norm_args.h"
#include "types.h"
#if defined(TWINOP_WITH_CUDA)
#include <torch/csrc/stable/accelerator.h>

#include "rms_norm_cuda.h"
#endif

// The same schemas as the classic library's, so the Python side serves both; a `float` arrives as
// a double.
// twinop-feature: registration
STABLE_TORCH_LIBRARY_FRAGMENT(twinop, m) {
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
namespace twinop::torch_stable_binding {

constexpr const char* kRmsNorm = "twinop.rms_norm";

// Validated, contiguous inputs in the core's terms. The forward args serve rms_norm (no
// residual) and add_rms_norm; the backward args serve both backward ops (ds only for the latter).
struct RmsNormArgs {
  Tensor x, residual, weight;
  Matrix2D matrix;
  DType dtype, weight_dtype;
  double eps, offset;
};

struct RmsNormBackwardArgs {
  Tensor dy, ds, x, rstd, weight;
  Matrix2D matrix;
  DType dtype, weight_dtype;
  double offset;
};

RmsNormArgs rms_norm_args(const Tensor& x, const Tensor* residual, const Tensor& weight, double eps, double offset) {
  if (residual) {
    throw_if_error(kRmsNorm, check_add_rms_norm_args(describe(x), describe(*residual), describe(weight), eps, offset));
    check_tensors(kRmsNorm, {{&x, "x"}, {&weight, "weight"}, {residual, "residual"}});
  } else {
    throw_if_error(kRmsNorm, check_rms_norm_args(describe(x), describe(weight), eps, offset));
    check_tensors(kRmsNorm, {{&x, "x"}, {&weight, "weight"}});
  }
  return {as_contiguous(x), residual ? as_contiguous(*residual) : Tensor(), as_contiguous(weight),
          as_matrix(shape_of(x)), *core_dtype(x.scalar_type()), *core_dtype(weight.scalar_type()), eps, offset};
}

RmsNormBackwardArgs rms_norm_backward_args(const Tensor& dy, const Tensor* ds, const Tensor& x, const Tensor& rstd,
                                           const Tensor& weight, double offset) {
  if (ds) {
    throw_if_error(kRmsNorm, check_add_rms_norm_backward_args(describe(dy), describe(*ds), describe(x), describe(rstd),
                                                              describe(weight), offset));
    check_tensors(kRmsNorm, {{&x, "s"}, {&weight, "weight"}, {&rstd, "rstd"}, {&dy, "dy"}, {ds, "ds"}});
  } else {
    throw_if_error(kRmsNorm,
                   check_rms_norm_backward_args(describe(dy), describe(x), describe(rstd), describe(weight), offset));
    check_tensors(kRmsNorm, {{&x, "x"}, {&weight, "weight"}, {&rstd, "rstd"}, {&dy, "dy"}});
  }
  return {as_contiguous(dy), ds ? as_contiguous(*ds) : Tensor(), as_contiguous(x), as_contiguous(rstd),
          as_contiguous(weight), as_matrix(shape_of(x)), *core_dtype(x.scalar_type()),
          *core_dtype(weight.scalar_type()), offset};
}

// rstd: x.shape[:-1] in the compute type.
Tensor empty_rstd(const Tensor& x) {
  const std::vector<std::int64_t> shape = shape_of(x);
  const std::vector<std::int64_t> rows(shape.begin(), shape.end() - 1);
  return torch::stable::new_empty(x, rows,
                                  x.scalar_type() == ScalarType::Double ? ScalarType::Double : ScalarType::Float);
}

// As bias_act_binding.h's templates, no device guard here: the CUDA kernels take it.
template <typename Kernels>
std::tuple<Tensor, Tensor> rms_norm(const Tensor& x, const Tensor& weight, double eps, double offset) {
  const RmsNormArgs args = rms_norm_args(x, nullptr, weight, eps, offset);
  Tensor y = torch::stable::empty_like(args.x);
  Tensor rstd = empty_rstd(args.x);
  Kernels::forward(args, y, rstd);
  return {y, rstd};
}

template <typename Kernels>
std::tuple<Tensor, Tensor, Tensor> add_rms_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                                double eps, double offset) {
  const RmsNormArgs args = rms_norm_args(x, &residual, weight, eps, offset);
  Tensor y = torch::stable::empty_like(args.x);
  Tensor s = torch::stable::empty_like(args.x);
  Tensor rstd = empty_rstd(args.x);
  Kernels::add_forward(args, y, s, rstd);
  return {y, s, rstd};
}

template <typename Kernels>
std::tuple<Tensor, Tensor> rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd,
                                             const Tensor& weight, double offset) {
  const RmsNormBackwardArgs args = rms_norm_backward_args(dy, nullptr, x, rstd, weight, offset);
  Tensor dx = torch::stable::empty_like(args.x);
  Tensor dweight = torch::stable::empty_like(args.weight);
  Kernels::backward(args, dx, dweight);
  return {dx, dweight};
}

template <typename Kernels>
std::tuple<Tensor, Tensor> add_rms_norm_backward(const Tensor& dy, const Tensor& ds, const Tensor& s,
                                                 const Tensor& rstd, const Tensor& weight, double offset) {
  const RmsNormBackwardArgs args = rms_norm_backward_args(dy, &ds, s, rstd, weight, offset);
  Tensor dx = torch::stable::empty_like(args.x);
  Tensor dweight = torch::stable::empty_like(args.weight);
  Kernels::backward(args, dx, dweight);
  return {dx, dweight};
}

// ds, where given, is an input of the same pass: add_rms_norm_backward_cpu, else rms_norm's.
struct RmsNormCpuKernels {
  static void forward(const RmsNormArgs& a, Tensor& y, Tensor& rstd) {
    rms_norm_forward_cpu(a.x.const_data_ptr(), a.weight.const_data_ptr(), y.mutable_data_ptr(),
                         rstd.mutable_data_ptr(), a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype, a.eps,
                         a.offset, torch_parallel_for);
  }
  static void add_forward(const RmsNormArgs& a, Tensor& y, Tensor& s, Tensor& rstd) {
    add_rms_norm_forward_cpu(a.x.const_data_ptr(), a.residual.const_data_ptr(), a.weight.const_data_ptr(),
                             y.mutable_data_ptr(), s.mutable_data_ptr(), rstd.mutable_data_ptr(), a.matrix.rows,
                             a.matrix.cols, a.dtype, a.weight_dtype, a.eps, a.offset, torch_parallel_for);
  }
  static void backward(const RmsNormBackwardArgs& a, Tensor& dx, Tensor& dweight) {
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
using torch::stable::accelerator::DeviceGuard;

struct RmsNormCudaKernels {
  static void forward(const RmsNormArgs& a, Tensor& y, Tensor& rstd) {
    const DeviceGuard guard(a.x.get_device_index());
    rms_norm_forward_cuda(a.x.const_data_ptr(), a.weight.const_data_ptr(), y.mutable_data_ptr(),
                          rstd.mutable_data_ptr(), a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype, a.eps,
                          a.offset, current_stream(kRmsNorm, a.x));
  }
  static void add_forward(const RmsNormArgs& a, Tensor& y, Tensor& s, Tensor& rstd) {
    const DeviceGuard guard(a.x.get_device_index());
    add_rms_norm_forward_cuda(a.x.const_data_ptr(), a.residual.const_data_ptr(), a.weight.const_data_ptr(),
                              y.mutable_data_ptr(), s.mutable_data_ptr(), rstd.mutable_data_ptr(), a.matrix.rows,
                              a.matrix.cols, a.dtype, a.weight_dtype, a.eps, a.offset, current_stream(kRmsNorm, a.x));
  }
  static void backward(const RmsNormBackwardArgs& a, Tensor& dx, Tensor& dweight) {
    const DeviceGuard guard(a.x.get_device_index());
    Tensor workspace =
        workspace_like(a.x, rms_norm_cuda_workspace_bytes(a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype));
    if (a.ds.defined()) {
      add_rms_norm_backward_cuda(a.dy.const_data_ptr(), a.ds.const_data_ptr(), a.x.const_data_ptr(),
                                 a.rstd.const_data_ptr(), a.weight.const_data_ptr(), dx.mutable_data_ptr(),
                                 dweight.mutable_data_ptr(), workspace.mutable_data_ptr(), workspace.numel(),
                                 a.matrix.rows, a.matrix.cols, a.dtype, a.weight_dtype, a.offset,
                                 current_stream(kRmsNorm, a.x));
    } else {
      rms_norm_backward_cuda(a.dy.const_data_ptr(), a.x.const_data_ptr(), a.rstd.const_data_ptr(),
                             a.weight.const_data_ptr(), dx.mutable_data_ptr(), dweight.mutable_data_ptr(),
                             workspace.mutable_data_ptr(), workspace.numel(), a.matrix.rows, a.matrix.cols, a.dtype,
                             a.weight_dtype, a.offset, current_stream(kRmsNorm, a.x));
    }
  }
};
#endif

}  // namespace twinop::torch_stable_binding

// twinop-feature: registration
STABLE_TORCH_LIBRARY_IMPL(twinop, CPU, m) {
  using namespace twinop::torch_stable_binding;
  m.impl("rms_norm", TORCH_BOX(&rms_norm<RmsNormCpuKernels>));
  m.impl("add_rms_norm", TORCH_BOX(&add_rms_norm<RmsNormCpuKernels>));
  m.impl("rms_norm_backward", TORCH_BOX(&rms_norm_backward<RmsNormCpuKernels>));
  m.impl("add_rms_norm_backward", TORCH_BOX(&add_rms_norm_backward<RmsNormCpuKernels>));
}

#if defined(TWINOP_WITH_CUDA)
STABLE_TORCH_LIBRARY_IMPL(twinop, CUDA, m) {
  using namespace twinop::torch_stable_binding;
  m.impl("rms_norm", TORCH_BOX(&rms_norm<RmsNormCudaKernels>));
  m.impl("add_rms_norm", TORCH_BOX(&add_rms_norm<RmsNormCudaKernels>));
  m.impl("rms_norm_backward", TORCH_BOX(&rms_norm_backward<RmsNormCudaKernels>));
  m.impl("add_rms_norm_backward", TORCH_BOX(&add_rms_norm_backward<RmsNormCudaKernels>));
}
#endif
