// Arrays of float16 converted to and from float32, and of float32 rounded to bfloat16: with the
// processor's conversion instructions on x86-64 processors that have them (checked once), else
// value by value.
#include "half_cpu.h"

#include "cpu_clones.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define TWINOP_X86_INTRINSICS 1
#endif

namespace twinop::cpu {
namespace {

#if defined(TWINOP_X86_INTRINSICS)
bool has_f16c() {
  static const bool yes = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return yes;
}

// target adds the instructions to whatever the rest of the file is compiled for.
__attribute__((target("avx,f16c"))) void to_float_f16c(const Float16* in, float* out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = to_float(in[i]);
}

__attribute__((target("avx,f16c"))) void from_float_f16c(const float* in, Float16* out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 floats = _mm256_loadu_ps(in + i);
    const __m128i halves = _mm256_cvtps_ph(floats, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), halves);
  }
  for (; i < n; ++i) out[i] = to_float16(in[i]);
}

bool has_avx512_bf16() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bf16");
  return yes;
}

// VCVTNE2PS2BF16 rounds to nearest even and quiets NaNs as to_bfloat16 does, but reads float
// subnormals as zero: 32 values holding one are rounded by to_bfloat16 instead.
__attribute__((target("avx512f,avx512dq,avx512bf16"))) void from_float_avx512_bf16(const float* in, BFloat16* out,
                                                                                    std::int64_t n) {
  constexpr int kSubnormal = 0x20;  // VFPCLASSPS's category bit
  std::int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 low = _mm512_loadu_ps(in + i), high = _mm512_loadu_ps(in + i + 16);
    if (_mm512_fpclass_ps_mask(low, kSubnormal) | _mm512_fpclass_ps_mask(high, kSubnormal)) {
      for (int j = 0; j < 32; ++j) out[i + j] = to_bfloat16(in[i + j]);
    } else {
      _mm512_storeu_si512(out + i, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(high, low)));
    }
  }
  for (; i < n; ++i) out[i] = to_bfloat16(in[i]);
}
#endif

// Cloned for AVX2 and AVX-512 (cpu_clones.h): without them this loop, out of the kernels' cloned
// loops, ran at SSE2's width and made bfloat16 kernels nearly twice as slow on processors without
// AVX512-BF16.
TWINOP_CPU_CLONES void round_to_bfloat16(const float* in, BFloat16* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = to_bfloat16(in[i]);
}

}  // namespace

void to_float(const Float16* in, float* out, std::int64_t n) {
#if defined(TWINOP_X86_INTRINSICS)
  if (has_f16c()) return to_float_f16c(in, out, n);
#endif
  for (std::int64_t i = 0; i < n; ++i) out[i] = to_float(in[i]);
}

void from_float(const float* in, Float16* out, std::int64_t n) {
#if defined(TWINOP_X86_INTRINSICS)
  if (has_f16c()) return from_float_f16c(in, out, n);
#endif
  for (std::int64_t i = 0; i < n; ++i) out[i] = to_float16(in[i]);
}

void from_float(const float* in, BFloat16* out, std::int64_t n) {
#if defined(TWINOP_X86_INTRINSICS)
  if (has_avx512_bf16()) return from_float_avx512_bf16(in, out, n);
#endif
  round_to_bfloat16(in, out, n);
}

}  // namespace twinop::cpu
