// Storage <-> compute type on the CPU: float16 and bfloat16 are computed in float32 and rounded
// to nearest once on the way out; float32 in float, float64 in double (as on the GPU,
// cuda/compute_type.cuh).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
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

// How the kernels read and write a row in compute type, a block at a time. float16 is read and
// written, and bfloat16 written, through float buffers of kHalfBlock values, converted at once with
// the processor's instructions (half_cpu.h); bfloat16 is read value by value (a shift). The
// conversion loops take the memory accesses away from the arithmetic, where the processor's
// prefetcher no longer sees them coming (512-value blocks were slower than converting value by
// value at 4096 x 4096), so the lines kPrefetchAhead values ahead are asked for first. float and
// double have nothing to convert: their block is the whole row.
inline constexpr std::int64_t kHalfBlock = 256;
inline constexpr std::int64_t kPrefetchAhead = 2048;
template <typename S> inline constexpr bool kReadByBlock = std::is_same_v<S, cpu::Float16>;
template <typename S>
inline constexpr bool kWrittenByBlock = std::is_same_v<S, cpu::Float16> || std::is_same_v<S, cpu::BFloat16>;

template <typename S>
std::int64_t block_columns(std::int64_t cols) {
  return kReadByBlock<S> || kWrittenByBlock<S> ? std::min(cols, kHalfBlock) : cols;
}

// A block's values in compute type; buffer (kHalfBlock values) is used where S is read by block.
template <typename S, bool = kReadByBlock<S>>
struct InputBlock {
  const S* values;
  InputBlock(const S* block, std::int64_t, compute_t<S>*) : values(block) {}
  compute_t<S> operator[](std::int64_t i) const { return to_compute(values[i]); }
};
template <typename S>
struct InputBlock<S, true> {
  const float* values;
  InputBlock(const S* block, std::int64_t n, float* buffer) : values(buffer) {
#if defined(__GNUC__)
    for (std::int64_t i = 0; i < n; i += 32) __builtin_prefetch(block + kPrefetchAhead + i);  // 64-byte lines
#endif
    cpu::to_float(block, buffer, n);
  }
  float operator[](std::int64_t i) const { return values[i]; }
};

// A block's results, given in compute type and stored rounded to S, by store() where buffered.
template <typename S, bool = kWrittenByBlock<S>>
struct OutputBlock {
  S* values;
  OutputBlock(S* block, compute_t<S>*) : values(block) {}
  void set(std::int64_t i, compute_t<S> v) { values[i] = from_compute<S>(v); }
  void store(std::int64_t) {}
};
template <typename S>
struct OutputBlock<S, true> {
  S* block;
  float* values;
  OutputBlock(S* block_, float* buffer) : block(block_), values(buffer) {}
  void set(std::int64_t i, float v) { values[i] = v; }
  void store(std::int64_t n) { cpu::from_float(values, block, n); }
};

// A row vector (a bias, a weight) in compute type C, converted once per call instead of once per
// element.
template <typename C, typename S>
std::vector<C> row_in_compute_type(const S* row, std::int64_t cols) {
  std::vector<C> out(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) out[c] = static_cast<C>(to_compute(row[c]));
  return out;
}

}  // namespace twinop
