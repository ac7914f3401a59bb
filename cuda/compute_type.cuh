// Storage <-> compute type on the GPU: half types are computed in float and rounded to
// nearest once on the way out; float32 in float, float64 in double (as on the CPU).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace twinop::cuda_detail {

template <typename S> struct ComputeTypeOf { using type = float; };
template <> struct ComputeTypeOf<double> { using type = double; };
template <typename S> using compute_t = typename ComputeTypeOf<S>::type;

// The significant bits of each storage type: the precision its results are rounded to, by which
// the activation math picks its approximations (activation_math.h's Precision).
template <typename S> inline constexpr int kSignificantBits = 24;
template <> inline constexpr int kSignificantBits<double> = 53;
template <> inline constexpr int kSignificantBits<__half> = 11;
template <> inline constexpr int kSignificantBits<__nv_bfloat16> = 8;

__device__ __forceinline__ float to_compute(float v) { return v; }
__device__ __forceinline__ double to_compute(double v) { return v; }
__device__ __forceinline__ float to_compute(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_compute(__nv_bfloat16 v) { return __bfloat162float(v); }

// a * b rounded once, never fused into a later add: a product that is both stored and summed
// (dx and dbias) then rounds the same way in every kernel instantiation and on every path.
__device__ __forceinline__ float mul_rounded(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rounded(double a, double b) { return __dmul_rn(a, b); }

// a * b + c rounded once, spelled out (not left to contraction) for the same reason.
__device__ __forceinline__ float fma_rounded(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double fma_rounded(double a, double b, double c) { return __fma_rn(a, b, c); }

template <typename S> __device__ __forceinline__ S from_compute(compute_t<S> v) { return v; }
template <> __device__ __forceinline__ __half from_compute<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_compute<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

}  // namespace twinop::cuda_detail
