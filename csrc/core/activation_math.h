// The one definition of each activation and its derivative, shared by the CPU and CUDA kernels.
// Each functor works on the compute type (float for float32/float16/bfloat16, double for float64).
// Adding an activation = one functor here + one line in TWINOP_FOR_EACH_ACTIVATION (types.h).
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define TWINOP_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TWINOP_HOST_DEVICE inline
#endif

namespace twinop::math {

// Overloads on the global C functions, which CUDA provides in device code too.
TWINOP_HOST_DEVICE float erf_(float v) { return ::erff(v); }
TWINOP_HOST_DEVICE double erf_(double v) { return ::erf(v); }
TWINOP_HOST_DEVICE float exp_(float v) { return ::expf(v); }
TWINOP_HOST_DEVICE double exp_(double v) { return ::exp(v); }

template <typename T>
TWINOP_HOST_DEVICE T sigmoid(T v) {
  return T(1) / (T(1) + exp_(-v));
}

// 0.5 v (1 + erf(v / sqrt 2))
struct Gelu {
  template <typename T>
  static TWINOP_HOST_DEVICE T value(T v) {
    return T(0.5) * v * (T(1) + erf_(v * T(0.70710678118654752440)));
  }
  template <typename T>
  static TWINOP_HOST_DEVICE T derivative(T v) {
    const T cdf = T(0.5) * (T(1) + erf_(v * T(0.70710678118654752440)));
    const T pdf = T(0.39894228040143267794) * exp_(T(-0.5) * v * v);  // 1/sqrt(2 pi) e^(-v^2/2)
    return cdf + v * pdf;
  }
};

// 0.5 v (1 + tanh(u)), u = sqrt(2/pi) (v + 0.044715 v^3), computed as v sigmoid(2u): the
// same function, without the cancellation of 1 + tanh(u) in the negative tail.
struct GeluTanh {
  template <typename T>
  static TWINOP_HOST_DEVICE T two_u(T v) {
    return T(2 * 0.79788456080286535588) * (v + T(0.044715) * v * v * v);
  }
  template <typename T>
  static TWINOP_HOST_DEVICE T value(T v) {
    return v * sigmoid(two_u(v));
  }
  template <typename T>
  static TWINOP_HOST_DEVICE T derivative(T v) {
    const T s = sigmoid(two_u(v));
    const T d_two_u = T(2 * 0.79788456080286535588) * (T(1) + T(3 * 0.044715) * v * v);
    return s + v * s * (T(1) - s) * d_two_u;
  }
};

// v sigmoid(v)
struct Silu {
  template <typename T>
  static TWINOP_HOST_DEVICE T value(T v) {
    return v * sigmoid(v);
  }
  template <typename T>
  static TWINOP_HOST_DEVICE T derivative(T v) {
    const T s = sigmoid(v);
    return s * (T(1) + v * (T(1) - s));
  }
};

// max(v, 0). As in PyTorch: NaN passes through the forward, and the derivative is 0 for
// v <= 0 and 1 otherwise (so at v = 0 it is 0, and at NaN it is 1).
struct Relu {
  template <typename T>
  static TWINOP_HOST_DEVICE T value(T v) {
    return v < T(0) ? T(0) : v;
  }
  template <typename T>
  static TWINOP_HOST_DEVICE T derivative(T v) {
    return v <= T(0) ? T(0) : T(1);
  }
};

}  // namespace twinop::math
