// The one definition of each activation and its first and second derivatives, shared by the
// CPU and CUDA kernels. Each functor works on the compute type (float for
// float32/float16/bfloat16, double for float64).
// Adding an activation = one functor here + one line in TWINOP_FOR_EACH_ACTIVATION (types.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define TWINOP_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TWINOP_HOST_DEVICE inline
#endif

namespace twinop::math {

// Elementary functions of the compute type, in three versions:
// - double, everywhere: the C library's exp and erf, and IEEE division (float64 must stay within
//   1e-10 of the reference);
// - float on the CPU: branch-free polynomials, so the CPU loops vectorize (libm's erff/expf are
//   opaque calls);
// - float on the GPU: the special function unit's approximations of 2^x and 1/x (ex2.approx,
//   rcp.approx), one instruction each, where CUDA's expf, erff and IEEE division cost several
//   times the instructions and leave the bfloat16 and float32 loops issue-bound rather than
//   memory-bound. They are the instructions behind __expf and __fdividef, in their flush-to-zero
//   form, which flushes only their own subnormal results, not the rest of the kernel's arithmetic
//   (as cuda_fp16.hpp uses them); the intrinsics' non-flushing forms add a range fix-up to each.
//   GELU there takes its cdf and pdf from one exponential (normal_cdf_pdf below) instead of erf.
// The GPU version is checked against float64 on the host over a sweep of float inputs (every
// binade to 1e18, subnormals, +-0, +-Inf, NaN; tests/test_gpu_math.py): TWINOP_GPU_MATH_ON_HOST
// compiles this same code for the CPU, with host twins of the two instructions
// (tests/gpu_math_twin.cpp) that take each to either end of __expf's and __fdividef's
// documented error bounds.
#if defined(__CUDA_ARCH__) || defined(TWINOP_GPU_MATH_ON_HOST)
#define TWINOP_GPU_FLOAT_MATH 1
#endif

#if defined(__CUDA_ARCH__)
TWINOP_HOST_DEVICE float exp2_(float v) {
  float e;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(v));
  return e;
}
TWINOP_HOST_DEVICE float recip_(float v) {  // 0 for |v| > 2^126, where 1/v is subnormal
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
  return r;
}
#elif defined(TWINOP_GPU_MATH_ON_HOST)
float exp2_(float v);  // the host twins of the two instructions, defined by the test
float recip_(float v);
#endif
#if defined(TWINOP_GPU_FLOAT_MATH)
TWINOP_HOST_DEVICE float exp_(float v) { return exp2_(v * 1.44269504088896341f); }  // __expf
#else
inline float bits_as_float(std::int32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// XLA's float erf: a rational minimax fit on [-4, 4], where it reaches +-1 in float;
// absolute error < 5e-7. NaN stays NaN, +-Inf gives +-1.
inline float erf_(float v) {
  const float x = v < -4.f ? -4.f : (v > 4.f ? 4.f : v);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 - 2.10102402082508e-06f;
  p = p * x2 - 5.69250639462346e-05f;
  p = p * x2 - 7.34990630326855e-04f;
  p = p * x2 - 2.95459980854025e-03f;
  p = p * x2 - 1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 - 2.13374055278905e-04f;
  q = q * x2 - 1.68282697438203e-03f;
  q = q * x2 - 7.37332916720468e-03f;
  q = q * x2 - 1.42647390514189e-02f;
  return x * p / q;
}

// Cephes' expf: e^v = 2^n e^r with |r| <= ln(2)/2, e^r by a polynomial; relative error
// < 1e-7. Underflow gives 0 (no denormals), overflow +Inf, NaN stays NaN.
inline float exp_(float v) {
  const float x = v < -87.33f ? -87.33f : (v > 88.72f ? 88.72f : v);
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round(x / ln 2)
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;            // x - n ln 2, in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * r * r + r + 1.f;
  // 2^n as two factors, each a normal float even for n = 128 or n = -126.
  const std::int32_t n_int = static_cast<std::int32_t>(n == n ? n : 0.f);  // NaN: any n, result is NaN
  const std::int32_t half = n_int / 2;
  const float result = e_r * bits_as_float((half + 127) << 23) * bits_as_float((n_int - half + 127) << 23);
  return v < -87.33f ? 0.f : (v > 88.72f ? __builtin_inff() : result);
}

inline float recip_(float v) { return 1.f / v; }
#endif
TWINOP_HOST_DEVICE double erf_(double v) { return ::erf(v); }
TWINOP_HOST_DEVICE double exp_(double v) { return ::exp(v); }
TWINOP_HOST_DEVICE double recip_(double v) { return 1.0 / v; }

#if defined(TWINOP_GPU_FLOAT_MATH)
// The standard normal cdf and pdf at v from one exponential, for GELU and its derivatives in
// float on the GPU. With z = |v| / sqrt 2 and t = 1 / (1 + p z), erfc(z) = e^(-z^2) t P(t)
// (Abramowitz & Stegun 7.1.26, absolute error < 1.5e-7), so cdf(-|v|) = erfc(z) / 2 and
// pdf(v) = e^(-z^2) / sqrt(2 pi) share e^(-z^2). P's coefficients are halved here (exactly), so
// t P(t) / 2 costs one multiply. The multiply-adds are written as fmaf, so the host twin rounds
// them as the GPU does.
struct NormalCdfPdf {
  float cdf, pdf;
};
TWINOP_HOST_DEVICE float gaussian_(float v) { return exp2_(v * (v * -0.72134752044448170368f)); }  // e^(-v^2/2)
TWINOP_HOST_DEVICE NormalCdfPdf normal_cdf_pdf(float v) {
  const float t = recip_(fmaf(0.3275911f * 0.70710678118654752440f, fabsf(v), 1.f));
  const float e = gaussian_(v);
  float half_p = 0.5307027145f;
  half_p = fmaf(half_p, t, -0.7265760135f);
  half_p = fmaf(half_p, t, 0.7107068705f);
  half_p = fmaf(half_p, t, -0.142248368f);
  half_p = fmaf(half_p, t, 0.127414796f);
  const float half_t_p = t * half_p;  // cdf(-|v|) = half_t_p e
  return {v < 0.f ? half_t_p * e : fmaf(-half_t_p, e, 1.f), 0.39894228040143267794f * e};
}
#endif

template <typename T>
TWINOP_HOST_DEVICE T sigmoid(T v) {
  return recip_(T(1) + exp_(-v));
}

// sigmoid(v) and 1 - sigmoid(v), both to full relative precision: where sigmoid(v) is near 1,
// 1 - s cancels (at v = 8 in float, half its digits), while e^-v s is exact to rounding.
template <typename T>
struct SigmoidPair {
  T s, one_minus_s;
};
template <typename T>
TWINOP_HOST_DEVICE SigmoidPair<T> sigmoid_pair(T v) {
  const T e = exp_(-v);
  const T s = recip_(T(1) + e);
  return {s, v < T(0) ? T(1) - s : e * s};  // v < 0: s < 1/2, no cancellation (and e may be Inf)
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
  // pdf (2 - v^2) as 2 pdf - (pdf v) v: past |v| ~ 1e19 (float) v^2 overflows, but pdf is 0 long
  // before, and (pdf v) v stays 0 where pdf (2 - v^2) would be 0 * Inf = NaN.
  template <typename T>
  static TWINOP_HOST_DEVICE T second_derivative(T v) {
    const T pdf = T(0.39894228040143267794) * exp_(T(-0.5) * v * v);
    return T(2) * pdf - pdf * v * v;
  }
#if defined(TWINOP_GPU_FLOAT_MATH)
  // float on the GPU: the cdf and the pdf from one exponential, with no erf.
  static TWINOP_HOST_DEVICE float value(float v) { return v * normal_cdf_pdf(v).cdf; }
  static TWINOP_HOST_DEVICE float derivative(float v) {
    const NormalCdfPdf n = normal_cdf_pdf(v);
    return fmaf(v, n.pdf, n.cdf);
  }
  static TWINOP_HOST_DEVICE float second_derivative(float v) {  // 2 pdf - (pdf v) v, as above
    const float pdf = 0.39894228040143267794f * gaussian_(v);
    return fmaf(-pdf * v, v, 2.f * pdf);
  }
#endif
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
  // t w', w' = d(2u)/dv = 2 sqrt(2/pi) (1 + 3 0.044715 v^2), with t multiplied into v's powers
  // one at a time: where t is 0 (s (1 - s) in the tails), this stays 0 past |v| ~ 1e19 (float),
  // where w' is Inf and t w' would be 0 * Inf = NaN. Where t is tiny, each product grows, so
  // none falls below float's normal range (which TensorFlow flushes to 0) before the result.
  template <typename T>
  static TWINOP_HOST_DEVICE T times_d_two_u(T t, T v) {
    return T(2 * 0.79788456080286535588) * (t + t * v * v * T(3 * 0.044715));
  }
  // s + v s(1-s) w', with w = 2u, s = sigmoid(w).
  template <typename T>
  static TWINOP_HOST_DEVICE T derivative(T v) {
    const SigmoidPair<T> p = sigmoid_pair(two_u(v));
    return p.s + times_d_two_u(p.s * p.one_minus_s * v, v);
  }
  // s(1-s) (2 w' + v ((1-2s) w'^2 + w'')), w'' = 2 sqrt(2/pi) 6 0.044715 v.
  template <typename T>
  static TWINOP_HOST_DEVICE T second_derivative(T v) {
    const SigmoidPair<T> p = sigmoid_pair(two_u(v));
    const T ds = p.s * p.one_minus_s;
    const T ds_w1 = times_d_two_u(ds, v);  // s(1-s) w'
    return T(2) * ds_w1 + v * ((p.one_minus_s - p.s) * times_d_two_u(ds_w1, v) +
                               ds * v * T(2 * 0.79788456080286535588 * 6 * 0.044715));
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
    const SigmoidPair<T> p = sigmoid_pair(v);
    return p.s * (T(1) + v * p.one_minus_s);
  }
  template <typename T>
  static TWINOP_HOST_DEVICE T second_derivative(T v) {
    const SigmoidPair<T> p = sigmoid_pair(v);
    return p.s * p.one_minus_s * (T(2) + v * (p.one_minus_s - p.s));
  }
};

// max(v, 0). As in PyTorch: NaN passes through the forward, and the derivative is 0 for
// v <= 0 and 1 otherwise (so at v = 0 it is 0, and at NaN it is 1); the second derivative is 0.
struct Relu {
  template <typename T>
  static TWINOP_HOST_DEVICE T value(T v) {
    return v < T(0) ? T(0) : v;
  }
  template <typename T>
  static TWINOP_HOST_DEVICE T derivative(T v) {
    return v <= T(0) ? T(0) : T(1);
  }
  template <typename T>
  static TWINOP_HOST_DEVICE T second_derivative(T) {
    return T(0);
  }
};

}  // namespace twinop::math
