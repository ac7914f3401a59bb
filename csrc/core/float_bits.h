// A float32 as its 32 bits and back: the bit arithmetic of the CPU's float16 and bfloat16
// conversions (half_cpu.h) and of its exponentials (activation_math.h).
#pragma once

#include <cstdint>
#include <cstring>

namespace twinop {

inline float bits_to_float(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline std::uint32_t float_to_bits(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

}  // namespace twinop
