// The CUDA stream handle in the CUDA APIs (cuda/*_cuda.h) and the bindings that pass it, declared
// as CUDA's driver_types.h declares it, so they compile without CUDA headers.
#pragma once

typedef struct CUstream_st* cudaStream_t;
