// Arrays of float16 converted to and from float32: with F16C's instructions on x86-64 processors
// that have them (checked once), else value by value.
#include "half_cpu.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define TWINOP_F16C 1
#endif

namespace twinop::cpu {
namespace {

#if defined(TWINOP_F16C)
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
#endif

}  // namespace

void to_float(const Float16* in, float* out, std::int64_t n) {
#if defined(TWINOP_F16C)
  if (has_f16c()) return to_float_f16c(in, out, n);
#endif
  for (std::int64_t i = 0; i < n; ++i) out[i] = to_float(in[i]);
}

void from_float(const float* in, Float16* out, std::int64_t n) {
#if defined(TWINOP_F16C)
  if (has_f16c()) return from_float_f16c(in, out, n);
#endif
  for (std::int64_t i = 0; i < n; ++i) out[i] = to_float16(in[i]);
}

}  // namespace twinop::cpu
