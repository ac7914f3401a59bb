// The one definition of each activation and its first and second derivatives, shared by the
// CPU and CUDA kernels. Each functor works on the compute type (float for
// float32/float16/bfloat16, double for float64) and takes the precision its result is rounded
// to (Precision below), which picks how accurate the elementary functions are.
// Adding an activation = one functor here + one line in TWINOP_FOR_EACH_ACTIVATION (types.h). Its
// float code compiles for the GPU only if every function it calls has a float version there (see
// DoubleOnly below): Gelu, whose erf has none, adds float functions of its own.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#define TWINOP_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TWINOP_HOST_DEVICE inline
#endif

namespace twinop::math {

// The precision a result is rounded to, in significant bits: 24 for float32 (the default), 11
// for float16, 8 for bfloat16, 53 for float64 (computed with libm whatever the precision). A float
// result rounded to float16 or bfloat16 needs a few bits past the dtype's, not float32's 24, so
// their elementary functions are cheaper approximations, accurate enough that the rounded result
// is the correctly rounded one but near a tie; tests/test_half_math.py and tests/test_gpu_math.py
// measure that over every input value of the dtype, against PyTorch's own ops.
template <int kSignificantBits>
struct Precision {
  static constexpr int kBits = kSignificantBits;
};
using Float32Precision = Precision<24>;

// Elementary functions of the compute type, in three versions, each by the precision (float32's
// accuracy for float32, cheaper fits for float16 and bfloat16 where they are cheaper):
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
template <int kBits>
TWINOP_HOST_DEVICE float exp_(float v, Precision<kBits>) {  // __expf, whatever the precision
  return exp2_(v * 1.44269504088896341f);
}
#else
inline float bits_as_float(std::int32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline std::int32_t float_bits(float f) {
  std::int32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// c[0] x^(N-1) + c[1] x^(N-2) + ... + c[N-1], by Horner's rule.
template <std::size_t N>
inline float polynomial(float x, const float (&c)[N]) {
  float p = c[0];
  for (std::size_t i = 1; i < N; ++i) p = p * x + c[i];
  return p;
}

// Rational fits erf(x) = x P(x^2) / Q(x^2) on [-clamp, clamp], by the precision of the result;
// each is exactly +-1 in float at +-clamp, so that past it the cdf 0.5 (1 + erf) is exactly 0 or 1:
// - float32 and float16: XLA's float erf, absolute error < 5e-7. float16 keeps it: GELU's
//   negative side needs the cdf's small values, where an absolute error weighs most, and with a
//   fit of P and Q of degree 3 (error 3e-6) 98.2% of float16 GELU's results over all inputs were
//   correctly rounded, against PyTorch's 99.3% (and 99.1% with this one);
// - bfloat16: a minimax fit of P of degree 2 and Q of degree 3, absolute error < 4.8e-5.
struct ErfFloat32 {
  static constexpr float clamp = 4.f;
  static constexpr float p[] = {-2.72614225801306e-10f, 2.77068142495902e-08f, -2.10102402082508e-06f,
                                -5.69250639462346e-05f, -7.34990630326855e-04f, -2.95459980854025e-03f,
                                -1.60960333262415e-02f};
  static constexpr float q[] = {-1.45660718464996e-05f, -2.13374055278905e-04f, -1.68282697438203e-03f,
                                -7.37332916720468e-03f, -1.42647390514189e-02f};
};
struct ErfBFloat16 {
  static constexpr float clamp = 2.8968518f;
  static constexpr float p[] = {3.078765608370304e-2f, 2.0991238951683044e-1f, 1.1280640363693237f};
  static constexpr float q[] = {3.432571655139327e-3f, 1.0338541120290756e-1f, 5.174570083618164e-1f, 1.f};
};
template <int kBits>
using ErfFit = std::conditional_t<(kBits > 8), ErfFloat32, ErfBFloat16>;

// Fits of e^r = 1 + r + r^2 P(r) for |r| <= ln(2)/2, by the precision of the result:
// - float32: Cephes' expf, P of degree 5, relative error < 1e-7;
// - float16: a minimax fit, P of degree 3, relative error < 2e-7;
// - bfloat16: P of degree 2, relative error < 6e-6.
struct ExpFloat32 {
  static constexpr float p[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
};
struct ExpFloat16 {
  static constexpr float p[] = {8.312887512147427e-3f, 4.189068824052811e-2f, 1.6667111217975616e-1f,
                                4.999922513961792e-1f};
};
struct ExpBFloat16 {
  static constexpr float p[] = {4.127359390258789e-2f, 1.6753563284873962e-1f, 5.00051736831665e-1f};
};
template <int kBits>
using ExpFit = std::conditional_t<(kBits > 11), ExpFloat32,
                                  std::conditional_t<(kBits > 8), ExpFloat16, ExpBFloat16>>;

// Minimax fits of 2^f = 1 + f P(f) for |f| <= 1/2: for float16 P of degree 4, relative error
// < 1.6e-7; for bfloat16 of degree 3, < 3e-6.
struct Exp2Float16 {
  static constexpr float p[] = {1.3274990487843752e-3f, 9.671846404671669e-3f, 5.550692602992058e-2f,
                                2.4022234976291656e-1f, 6.931470036506653e-1f};
};
struct Exp2BFloat16 {
  static constexpr float p[] = {9.582193568348885e-3f, 5.590667575597763e-2f, 2.402411699295044e-1f,
                                6.931241750717163e-1f};
};
template <int kBits>
using Exp2Fit = std::conditional_t<(kBits > 8), Exp2Float16, Exp2BFloat16>;

// erf by the fit for the precision. NaN stays NaN, +-Inf gives +-1.
template <int kBits>
inline float erf_(float v, Precision<kBits>) {
  using Fit = ErfFit<kBits>;
  const float x = v < -Fit::clamp ? -Fit::clamp : (v > Fit::clamp ? Fit::clamp : v);
  const float x2 = x * x;
  return x * polynomial(x2, Fit::p) / polynomial(x2, Fit::q);
}

// e^v = 2^n e^r with |r| <= ln(2)/2 (Cephes' expf), e^r by the fit for the precision.
// Underflow gives 0 (no denormals), overflow +Inf, NaN stays NaN.
template <int kBits>
inline float exp_(float v, Precision<kBits>) {
  using Fit = ExpFit<kBits>;
  const float shifted = v * 1.44269504088896341f + 12582912.f;  // 1.5 2^23 + n, n = round(v / ln 2)
  const float n = shifted - 12582912.f;
  const float r = (v - n * 0.693359375f) + n * 2.12194440e-4f;  // v - n ln 2, in two parts
  const float e_r = polynomial(r, Fit::p) * r * r + r + 1.f;
  // 2^n as two factors 2^a 2^b, each a normal float for n in [-126, 128], from n's bits in
  // `shifted`: m = n + 254, a + 127 = m / 2 rounded down, b + 127 = m - m / 2. Unsigned, so
  // that outside the range, where the result is replaced below, no operation overflows.
  const std::uint32_t m = static_cast<std::uint32_t>(float_bits(shifted)) - (0x4B400000u - 254u);
  const float two_a = bits_as_float(static_cast<std::int32_t>((m >> 1) << 23));
  const float two_b = bits_as_float(static_cast<std::int32_t>((m - (m >> 1)) << 23));
  const float result = e_r * two_a * two_b;
  return v < -87.33f ? 0.f : (v > 88.72f ? __builtin_inff() : result);
}

// e^(-v^2/2), GELU's pdf but for its constant. For float32 results it is exp_ above; for float16
// and bfloat16 2^y, y = -v^2 / (2 ln 2) <= 0 (as on the GPU), which needs no reduction in two
// parts (y's own rounding, as v^2's in float32, is the larger error), no overflow and only one
// factor for 2^n: 2^y = 2^n 2^f, n = round(y), |f| <= 1/2, 2^f by the fit. Underflow gives 0.
template <int kBits>
inline float gaussian_(float v, Precision<kBits> precision) {
  if constexpr (kBits > 11) {
    return exp_(-0.5f * v * v, precision);
  } else {
    const float y = v * (v * -0.72134752044448170368f);
    const float shifted = y + 12582912.f;  // 1.5 2^23 + n
    const float f = y - (shifted - 12582912.f);
    const std::uint32_t exponent = static_cast<std::uint32_t>(float_bits(shifted)) - (0x4B400000u - 127u);
    const float two_n = bits_as_float(static_cast<std::int32_t>(exponent << 23));  // n + 127 in 2^n's bits
    const float result = (polynomial(f, Exp2Fit<kBits>::p) * f + 1.f) * two_n;
    return y < -126.f ? 0.f : result;
  }
}

inline float recip_(float v) { return 1.f / v; }
#endif
// The double versions take a double and nothing else: a float argument is not converted to them.
// So float code finds the float version of its function or does not compile: on the GPU there is
// no float erf_ and no float gaussian_ taking a precision, and an activation calling either on
// float fails to build there (tests/test_gpu_math.py) instead of silently running in double.
// Such an activation adds float functions of its own under TWINOP_GPU_FLOAT_MATH, as Gelu does.
template <typename T>
using DoubleOnly = std::enable_if_t<std::is_same_v<T, double>, double>;
template <typename T, int kBits>
TWINOP_HOST_DEVICE DoubleOnly<T> erf_(T v, Precision<kBits>) {
  return ::erf(v);
}
template <typename T, int kBits>
TWINOP_HOST_DEVICE DoubleOnly<T> exp_(T v, Precision<kBits>) {
  return ::exp(v);
}
template <typename T, int kBits>
TWINOP_HOST_DEVICE DoubleOnly<T> gaussian_(T v, Precision<kBits> precision) {  // e^(-v^2/2)
  return exp_(-0.5 * v * v, precision);
}
template <typename T>
TWINOP_HOST_DEVICE DoubleOnly<T> recip_(T v) {
  return 1.0 / v;
}

#if defined(TWINOP_GPU_FLOAT_MATH)
// The standard normal cdf and pdf at v from one exponential, for GELU and its derivatives in
// float on the GPU. With z = |v| / sqrt 2 and t = 1 / (1 + p z), erfc(z) = e^(-z^2) t P(t), so
// cdf(-|v|) = erfc(z) / 2 and pdf(v) = e^(-z^2) / sqrt(2 pi) share e^(-z^2). P, by the precision
// of the result: Abramowitz & Stegun 7.1.26 (degree 4, absolute error < 1.5e-7); for bfloat16, a
// minimax fit of the same form of degree 2 (absolute error < 2e-5). P's coefficients are halved
// here (exactly), so t P(t) / 2 costs one multiply. The multiply-adds are written as fmaf, so the
// host twin rounds them as the GPU does.
struct NormalCdfPdf {
  float cdf, pdf;
};
TWINOP_HOST_DEVICE float gaussian_(float v) { return exp2_(v * (v * -0.72134752044448170368f)); }  // e^(-v^2/2)
template <int kBits>
TWINOP_HOST_DEVICE NormalCdfPdf normal_cdf_pdf(float v, Precision<kBits>) {
  float t, half_p;
  if constexpr (kBits > 8) {
    t = recip_(fmaf(0.3275911f * 0.70710678118654752440f, fabsf(v), 1.f));
    half_p = 0.5307027145f;
    half_p = fmaf(half_p, t, -0.7265760135f);
    half_p = fmaf(half_p, t, 0.7107068705f);
    half_p = fmaf(half_p, t, -0.142248368f);
    half_p = fmaf(half_p, t, 0.127414796f);
  } else {
    t = recip_(fmaf(0.4718f * 0.70710678118654752440f, fabsf(v), 1.f));
    half_p = 0.36964950f;
    half_p = fmaf(half_p, t, -0.042499628f);
    half_p = fmaf(half_p, t, 0.17285934f);
  }
  const float e = gaussian_(v);
  const float half_t_p = t * half_p;  // cdf(-|v|) = half_t_p e
  return {v < 0.f ? half_t_p * e : fmaf(-half_t_p, e, 1.f), 0.39894228040143267794f * e};
}
#endif

template <typename T, typename P>
TWINOP_HOST_DEVICE T sigmoid(T v, P precision) {
  return recip_(T(1) + exp_(-v, precision));
}

// sigmoid(v) and 1 - sigmoid(v), both to full relative precision: where sigmoid(v) is near 1,
// 1 - s cancels (at v = 8 in float, half its digits), while e^-v s is exact to rounding.
template <typename T>
struct SigmoidPair {
  T s, one_minus_s;
};
template <typename T, typename P>
TWINOP_HOST_DEVICE SigmoidPair<T> sigmoid_pair(T v, P precision) {
  const T e = exp_(-v, precision);
  const T s = recip_(T(1) + e);
  return {s, v < T(0) ? T(1) - s : e * s};  // v < 0: s < 1/2, no cancellation (and e may be Inf)
}

// 0.5 v (1 + erf(v / sqrt 2))
struct Gelu {
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T value(T v, P precision = {}) {
    return T(0.5) * v * (T(1) + erf_(v * T(0.70710678118654752440), precision));
  }
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T derivative(T v, P precision = {}) {
    const T cdf = T(0.5) * (T(1) + erf_(v * T(0.70710678118654752440), precision));
    const T pdf = T(0.39894228040143267794) * gaussian_(v, precision);  // 1/sqrt(2 pi) e^(-v^2/2)
    return cdf + v * pdf;
  }
  // pdf (2 - v^2) as 2 pdf - (pdf v) v: past |v| ~ 1e19 (float) v^2 overflows, but pdf is 0 long
  // before, and (pdf v) v stays 0 where pdf (2 - v^2) would be 0 * Inf = NaN.
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T second_derivative(T v, P precision = {}) {
    const T pdf = T(0.39894228040143267794) * gaussian_(v, precision);
    return T(2) * pdf - pdf * v * v;
  }
#if defined(TWINOP_GPU_FLOAT_MATH)
  // float on the GPU: the cdf and the pdf from one exponential, with no erf.
  template <int kBits = 24>
  static TWINOP_HOST_DEVICE float value(float v, Precision<kBits> precision = {}) {
    return v * normal_cdf_pdf(v, precision).cdf;
  }
  template <int kBits = 24>
  static TWINOP_HOST_DEVICE float derivative(float v, Precision<kBits> precision = {}) {
    const NormalCdfPdf n = normal_cdf_pdf(v, precision);
    return fmaf(v, n.pdf, n.cdf);
  }
  template <int kBits = 24>  // 2 pdf - (pdf v) v, as above
  static TWINOP_HOST_DEVICE float second_derivative(float v, Precision<kBits> = {}) {
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
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T value(T v, P precision = {}) {
    return v * sigmoid(two_u(v), precision);
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
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T derivative(T v, P precision = {}) {
    const SigmoidPair<T> p = sigmoid_pair(two_u(v), precision);
    return p.s + times_d_two_u(p.s * p.one_minus_s * v, v);
  }
  // s(1-s) (2 w' + v ((1-2s) w'^2 + w'')), w'' = 2 sqrt(2/pi) 6 0.044715 v.
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T second_derivative(T v, P precision = {}) {
    const SigmoidPair<T> p = sigmoid_pair(two_u(v), precision);
    const T ds = p.s * p.one_minus_s;
    const T ds_w1 = times_d_two_u(ds, v);  // s(1-s) w'
    return T(2) * ds_w1 + v * ((p.one_minus_s - p.s) * times_d_two_u(ds_w1, v) +
                               ds * v * T(2 * 0.79788456080286535588 * 6 * 0.044715));
  }
};

// v sigmoid(v)
struct Silu {
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T value(T v, P precision = {}) {
    return v * sigmoid(v, precision);
  }
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T derivative(T v, P precision = {}) {
    const SigmoidPair<T> p = sigmoid_pair(v, precision);
    return p.s * (T(1) + v * p.one_minus_s);
  }
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T second_derivative(T v, P precision = {}) {
    const SigmoidPair<T> p = sigmoid_pair(v, precision);
    return p.s * p.one_minus_s * (T(2) + v * (p.one_minus_s - p.s));
  }
};

// max(v, 0). As in PyTorch: NaN passes through the forward, and the derivative is 0 for
// v <= 0 and 1 otherwise (so at v = 0 it is 0, and at NaN it is 1); the second derivative is 0.
struct Relu {
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T value(T v, P = {}) {
    return v < T(0) ? T(0) : v;
  }
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T derivative(T v, P = {}) {
    return v <= T(0) ? T(0) : T(1);
  }
  template <typename T, typename P = Float32Precision>
  static TWINOP_HOST_DEVICE T second_derivative(T, P = {}) {
    return T(0);
  }
};

}  // namespace twinop::math
