// Turns the runtime activation enum into a compile-time functor, so kernels inline the math.
#pragma once

#include <stdexcept>
#include <utility>

#include "activation_math.h"
#include "types.h"

namespace twinop {

// Calls visitor(Functor{}) for the functor that `act` names.
template <typename Visitor>
decltype(auto) visit_activation(Activation act, Visitor&& visitor) {
  switch (act) {
#define TWINOP_VISIT_CASE(name, functor) \
  case Activation::name:                 \
    return std::forward<Visitor>(visitor)(math::functor{});
    TWINOP_FOR_EACH_ACTIVATION(TWINOP_VISIT_CASE)
#undef TWINOP_VISIT_CASE
  }
  throw std::invalid_argument("twinop: activation enum out of range");
}

}  // namespace twinop
