// float16 and bfloat16 storage on the CPU, converted to and from float32 for compute.
// Portable bit arithmetic, so the core needs no compiler extension and no framework header; arrays
// of float16 are converted with the processor's instructions where it has them (half_cpu.cpp).
#pragma once

#include <cstdint>

#include "float_bits.h"

namespace twinop::cpu {

struct Float16 { std::uint16_t bits; };
struct BFloat16 { std::uint16_t bits; };

// IEEE half -> float, exact (after Marat Dukhan's FP16 library, MIT).
inline float to_float(Float16 h) {
  const std::uint32_t w = static_cast<std::uint32_t>(h.bits) << 16;
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t two_w = w + w;
  const float normalized = bits_to_float((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = bits_to_float((two_w >> 17) | (126u << 23)) - 0.5f;
  const std::uint32_t magnitude =
      two_w < (1u << 27) ? float_to_bits(denormalized) : float_to_bits(normalized);
  return bits_to_float(sign | magnitude);
}

// float -> IEEE half, round to nearest even; overflow gives Inf, NaN stays NaN.
inline Float16 to_float16(float f) {
  float base = (f < 0 ? -f : f) * 0x1.0p+112f * 0x1.0p-110f;
  const std::uint32_t w = float_to_bits(f);
  const std::uint32_t shl1_w = w + w;
  const std::uint32_t sign = w & 0x80000000u;
  std::uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = bits_to_float((bias >> 1) + 0x07800000u) + base;
  const std::uint32_t bits = float_to_bits(base);
  const std::uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
  return {static_cast<std::uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign))};
}

// Arrays of n values. float16's use F16C's conversion instructions where the processor has them
// (half_cpu.cpp): GCC does not vectorize float16 conversions by itself, and the bit arithmetic above
// made the float16 kernels about 0.15 ns a value slower than bfloat16's (one thread, in cache).
// The results are the same (round to nearest even) but for NaN payloads.
void to_float(const Float16* in, float* out, std::int64_t n);
void from_float(const float* in, Float16* out, std::int64_t n);

inline float to_float(BFloat16 b) { return bits_to_float(static_cast<std::uint32_t>(b.bits) << 16); }

// float -> bfloat16, round to nearest even; NaN stays a quiet NaN with its sign.
inline BFloat16 to_bfloat16(float f) {
  const std::uint32_t w = float_to_bits(f);
  const bool is_nan = (w & 0x7FFFFFFFu) > 0x7F800000u;
  return {static_cast<std::uint16_t>(is_nan ? (w >> 16) | 0x0040u : (w + 0x7FFFu + ((w >> 16) & 1u)) >> 16)};
}

// Arrays of n bfloat16 values rounded from float, with AVX512-BF16's conversion instruction where
// the processor has it (half_cpu.cpp): the rounding above takes about ten vector instructions per
// 16 values, which made the bfloat16 kernels compute-bound on the CPU. Same results, NaNs included.
void from_float(const float* in, BFloat16* out, std::int64_t n);

}  // namespace twinop::cpu
