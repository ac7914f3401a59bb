// CPU kernels of the fused op: one pass over the data for the forward and for the backward.
#include <cstdint>
#include <vector>

#include "bias_act.h"
#include "dispatch.h"
#include "half_cpu.h"

namespace twinop {
namespace {

// Storage -> compute type: half types are computed in float32, float64 in float64.
template <typename S> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

template <typename S> inline typename Compute<S>::type load(S v) { return v; }
inline float load(cpu::Float16 v) { return cpu::to_float(v); }
inline float load(cpu::BFloat16 v) { return cpu::to_float(v); }

template <typename S> inline S store(typename Compute<S>::type v) { return v; }
template <> inline cpu::Float16 store<cpu::Float16>(float v) { return cpu::from_float(v, cpu::Float16{}); }
template <> inline cpu::BFloat16 store<cpu::BFloat16>(float v) { return cpu::from_float(v, cpu::BFloat16{}); }

// The bias in compute type, converted once per call instead of once per element.
template <typename S>
std::vector<typename Compute<S>::type> bias_in_compute_type(const S* bias, std::int64_t cols) {
  std::vector<typename Compute<S>::type> out(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) out[c] = load(bias[c]);
  return out;
}

template <typename S, typename Act>
void forward(const S* x, const S* bias, S* y, std::int64_t rows, std::int64_t cols) {
  const auto b = bias_in_compute_type(bias, cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    const S* x_row = x + r * cols;
    S* y_row = y + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) y_row[c] = store<S>(Act::value(load(x_row[c]) + b[c]));
  }
}

template <typename S, typename Act>
void backward(const S* dy, const S* x, const S* bias, S* dx, S* dbias, std::int64_t rows,
              std::int64_t cols) {
  using C = typename Compute<S>::type;
  const auto b = bias_in_compute_type(bias, cols);
  std::vector<C> dbias_acc(static_cast<std::size_t>(cols), C(0));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t offset = r * cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      const C grad = load(dy[offset + c]) * Act::derivative(load(x[offset + c]) + b[c]);
      dx[offset + c] = store<S>(grad);
      dbias_acc[c] += grad;  // accumulated before rounding to S, like the CUDA kernel
    }
  }
  for (std::int64_t c = 0; c < cols; ++c) dbias[c] = store<S>(dbias_acc[c]);
}

// Calls fn(S{}) with the storage type that `dtype` names.
template <typename Fn>
void visit_storage(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{});
    case DType::kFloat64: return fn(double{});
    case DType::kFloat16: return fn(cpu::Float16{});
    case DType::kBFloat16: return fn(cpu::BFloat16{});
  }
  throw std::invalid_argument("twinop: dtype enum out of range");
}

}  // namespace

void bias_act_forward_cpu(const void* x, const void* bias, void* y, std::int64_t rows,
                          std::int64_t cols, DType dtype, Activation act) {
  visit_storage(dtype, [&](auto tag) {
    using S = decltype(tag);
    visit_activation(act, [&](auto functor) {
      forward<S, decltype(functor)>(static_cast<const S*>(x), static_cast<const S*>(bias),
                                    static_cast<S*>(y), rows, cols);
    });
  });
}

void bias_act_backward_cpu(const void* dy, const void* x, const void* bias, void* dx,
                           void* dbias, std::int64_t rows, std::int64_t cols, DType dtype,
                           Activation act) {
  visit_storage(dtype, [&](auto tag) {
    using S = decltype(tag);
    visit_activation(act, [&](auto functor) {
      backward<S, decltype(functor)>(static_cast<const S*>(dy), static_cast<const S*>(x),
                                     static_cast<const S*>(bias), static_cast<S*>(dx),
                                     static_cast<S*>(dbias), rows, cols);
    });
  });
}

}  // namespace twinop
