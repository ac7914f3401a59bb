// Storage <-> compute type on the CPU: float16 and bfloat16 are computed in float32 and rounded
// to nearest once on the way out; float32 in float, float64 in double (as on the GPU,
// cuda/compute_type.cuh).
#pragma once

#include <cstdint>
#include <vector>

#include "half_cpu.h"

namespace twinop {

template <typename S> struct ComputeTypeOf { using type = float; };
template <> struct ComputeTypeOf<double> { using type = double; };
template <typename S> using compute_t = typename ComputeTypeOf<S>::type;

// The significant bits of each storage type: the precision its results are rounded to, by which
// the activation math picks its approximations (activation_math.h's Precision).
template <typename S> inline constexpr int kSignificantBits = 24;
template <> inline constexpr int kSignificantBits<double> = 53;
template <> inline constexpr int kSignificantBits<cpu::Float16> = 11;
template <> inline constexpr int kSignificantBits<cpu::BFloat16> = 8;

inline float to_compute(float v) { return v; }
inline double to_compute(double v) { return v; }
inline float to_compute(cpu::Float16 v) { return cpu::to_float(v); }
inline float to_compute(cpu::BFloat16 v) { return cpu::to_float(v); }

template <typename S> S from_compute(compute_t<S> v);
template <> inline float from_compute<float>(float v) { return v; }
template <> inline double from_compute<double>(double v) { return v; }
template <> inline cpu::Float16 from_compute<cpu::Float16>(float v) { return cpu::to_float16(v); }
template <> inline cpu::BFloat16 from_compute<cpu::BFloat16>(float v) { return cpu::to_bfloat16(v); }

// A row vector (a bias, a weight) in compute type C, converted once per call instead of once per
// element.
template <typename C, typename S>
std::vector<C> row_in_compute_type(const S* row, std::int64_t cols) {
  std::vector<C> out(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) out[c] = static_cast<C>(to_compute(row[c]));
  return out;
}

}  // namespace twinop
