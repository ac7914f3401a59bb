// TWINOP_CPU_CLONES: one binary for every x86-64. GCC also compiles the marked loops for AVX2 and
// AVX-512 and picks the best the processor has when the library loads.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TWINOP_CPU_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define TWINOP_CPU_CLONES
#endif

// TWINOP_CLONED_INLINE: a helper of the marked loops, always inlined into them, so that it is compiled
// for each clone's instructions (GCC left the larger ones as calls to the baseline x86-64 code).
#if defined(__GNUC__)
#define TWINOP_CLONED_INLINE inline __attribute__((always_inline))
#else
#define TWINOP_CLONED_INLINE inline
#endif
