// The vocabulary every binding shares with the kernels: element types and activations.
// Framework-free: bindings map their own dtype and string types onto these enums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace twinop {

// Storage element types. Half types are computed in float32, float64 in float64.
enum class DType : std::uint8_t { kFloat32, kFloat64, kFloat16, kBFloat16 };

// The one list of activations: X(enum_name, functor in activation_math.h).
// Adding an activation = one line here + one functor in activation_math.h (which says what float
// math the GPU has: a functor calling a function it lacks does not compile for the GPU).
#define TWINOP_FOR_EACH_ACTIVATION(X) \
  X(gelu, Gelu)                       \
  X(gelu_tanh, GeluTanh)              \
  X(silu, Silu)                       \
  X(relu, Relu)

enum class Activation : std::uint8_t {
#define TWINOP_ENUM_ENTRY(name, functor) name,
  TWINOP_FOR_EACH_ACTIVATION(TWINOP_ENUM_ENTRY)
#undef TWINOP_ENUM_ENTRY
};

inline constexpr std::string_view kActivationNames[] = {
#define TWINOP_NAME_ENTRY(name, functor) #name,
    TWINOP_FOR_EACH_ACTIVATION(TWINOP_NAME_ENTRY)
#undef TWINOP_NAME_ENTRY
};

inline constexpr int kNumActivations = sizeof(kActivationNames) / sizeof(kActivationNames[0]);

// Returns false for a name that is not in the list (bindings turn that into their error type).
inline bool parse_activation(std::string_view name, Activation* out) {
  for (int i = 0; i < kNumActivations; ++i) {
    if (kActivationNames[i] == name) {
      *out = static_cast<Activation>(i);
      return true;
    }
  }
  return false;
}

inline std::size_t element_bytes(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kFloat16:
    case DType::kBFloat16: return 2;
  }
  return 0;
}

// By numpy's dtype name, as the numpy binding and JAX's trace-time checks receive it; none for
// another dtype.
inline std::optional<DType> dtype_from_name(std::string_view name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float64") return DType::kFloat64;
  if (name == "float16") return DType::kFloat16;
  if (name == "bfloat16") return DType::kBFloat16;
  return std::nullopt;
}

}  // namespace twinop
