// The GPU's float activation math, compiled for the host (tests/test_gpu_math.py builds it with
// the system C++ compiler and calls it through ctypes). The activation code is the GPU's, from
// the same header under TWINOP_GPU_MATH_ON_HOST; only its two special-function instructions are
// replaced, by twins that can sit at either end of their error bounds:
// - ex2.approx.ftz.f32 (2^y): 2^y correctly rounded, moved by exp_bound times 2 ulp, and flushed
//   to zero where subnormal. 2 ulp is __expf's documented bound (CUDA C++ Programming Guide:
//   2 + floor(1.173 |x|) ulp for __expf(x) = 2^(x log2 e)) where x log2(e) is exact; the part
//   that grows with |x| is the rounding of that product, which the twin computes as the GPU does.
// - rcp.approx.ftz.f32 (1/y): 1/y correctly rounded, moved by recip_bound times 2 ulp (the bound
//   of __fdividef(1, y)) for 2^-126 <= |y| <= 2^126; 0 for larger |y|, where 1/y is subnormal.
// The test evaluates every combination of bounds in {-1, 0, 1}. Compiled with -ffp-contract=off:
// the multiply-adds that the GPU fuses are the header's explicit fmaf calls; any other fusion on
// the GPU only removes a rounding.
#define TWINOP_GPU_MATH_ON_HOST
#include <cfloat>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "dispatch.h"

namespace {

int exp_bound = 0;
int recip_bound = 0;

// r moved by `ulps` units in its last place, away from zero for ulps > 0; +-Inf past the largest float.
float move_ulps(float r, std::int64_t ulps) {
  if (ulps == 0 || !std::isfinite(r) || r == 0.f) return r;
  std::int32_t bits;
  std::memcpy(&bits, &r, sizeof bits);
  const std::int32_t sign = bits & INT32_MIN;
  const std::int64_t magnitude = std::int64_t(bits & INT32_MAX) + ulps;
  const std::int64_t clamped = magnitude < 0 ? 0 : (magnitude > 0x7f800000 ? 0x7f800000 : magnitude);
  const std::int32_t moved = sign | static_cast<std::int32_t>(clamped);
  float out;
  std::memcpy(&out, &moved, sizeof out);
  return out;
}

}  // namespace

namespace twinop::math {

float exp2_(float v) {
  const float moved = move_ulps(static_cast<float>(std::exp2(static_cast<double>(v))), 2 * exp_bound);
  return moved < FLT_MIN ? 0.f : moved;
}

float recip_(float v) {
  const float magnitude = std::fabs(v);
  if (magnitude > 0x1p126f) return 0.f;  // __fdividef(1, y) for 2^126 < |y| < 2^128, and 1 / Inf
  const float exact = 1.f / v;
  return magnitude >= 0x1p-126f ? move_ulps(exact, 2 * recip_bound) : exact;
}

}  // namespace twinop::math

extern "C" {

void twin_set_bounds(int exp_bound_, int recip_bound_) {
  exp_bound = exp_bound_;
  recip_bound = recip_bound_;
}

// out[i] = the activation's value (order 0), derivative (1) or second derivative (2) at v[i], for
// results rounded to `bits` significant bits (24: float32, 11: float16, 8: bfloat16); returns 0,
// or -1 for an unknown activation name, order or precision.
int twin_eval(const char* act_name, int order, int bits, const float* v, float* out, std::int64_t n) {
  twinop::Activation act;
  if (!twinop::parse_activation(act_name, &act) || order < 0 || order > 2) return -1;
  const auto eval = [&](auto precision) {
    twinop::visit_activation(act, [&](auto functor) {
      using Act = decltype(functor);
      for (std::int64_t i = 0; i < n; ++i) {
        out[i] = order == 0   ? Act::value(v[i], precision)
                 : order == 1 ? Act::derivative(v[i], precision)
                              : Act::second_derivative(v[i], precision);
      }
    });
  };
  switch (bits) {
    case 24: eval(twinop::math::Precision<24>{}); return 0;
    case 11: eval(twinop::math::Precision<11>{}); return 0;
    case 8: eval(twinop::math::Precision<8>{}); return 0;
  }
  return -1;
}

}  // extern "C"
