// bias_act's C interface in the JAX handler library, which python/twinop/jax/_library.py loads
// with ctypes: one XLA FFI handler per op and platform (registered with
// jax.ffi.register_ffi_target, each op under one name for both platforms), and the argument check
// twinop.jax runs at trace time. Declared here, once, exported (binding.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "binding.h"
#include "xla/ffi/api/c_api.h"

TWINOP_JAX_HANDLERS(TwinopBiasAct);                // "twinop_bias_act": (x, bias; act) -> y
TWINOP_JAX_HANDLERS(TwinopBiasActBackward);        // "twinop_bias_act_backward": (dy, x, bias; act) -> (dx, dbias)
// twinop-feature: second-order
TWINOP_JAX_HANDLERS(TwinopBiasActDoubleBackward);  // "twinop_bias_act_double_backward":
                                                   //   (g, g_bias, dy, x, bias; act) -> (d_dy, d_x, d_bias)

// twinop-feature: shapes
// The op's argument rules (csrc/core/bias_act_args.h) on shapes and dtype names, for `count` arrays
// in the order of one op's arguments: 2 (forward), 3 (backward) or 5 (double backward).
// `act` is `act_size` bytes, a NUL among them included. Returns 0 when they hold; otherwise 1 for
// a TypeError or 2 for a ValueError, with the message written to `message` (binding.h's report).
TWINOP_JAX_EXPORT int TwinopBiasActCheckArgs(int count, const char* const* dtype_names, const int* ranks,
                                             const std::int64_t* const* shapes, const char* act,
                                             std::size_t act_size, char* message, std::size_t message_size);
