// The argument rules (bias_act_args.h) asked by twinop.jax at trace time, where JAX knows every shape
// and dtype: a bad call raises TypeError / ValueError before anything is compiled or run, as
// JAX's own ops do, with the words of every other binding. The handlers check again when they
// run, for callers of the raw FFI targets.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "bias_act_args.h"
#include "bias_act_ops.h"
#include "binding.h"

namespace twinop::jax_binding {
namespace {

std::optional<ArgError> check(const std::vector<TensorInfo>& t, std::string_view act_name) {
  std::optional<ArgError> error;
  switch (t.size()) {
    case 2: error = check_bias_act_args(t[0], t[1]); break;
    case 3: error = check_bias_act_backward_args(t[0], t[1], t[2]); break;
    // twinop-feature: second-order
    case 5: error = check_bias_act_double_backward_args(t[0], t[1], t[2], t[3], t[4]); break;
    // twinop-feature: end
    default: return ArgError{ArgError::Kind::kValue, "TwinopBiasActCheckArgs takes 2, 3 or 5 arrays"};
  }
  Activation act{};
  return error ? error : parse_activation_arg(act_name, &act);
}

}  // namespace
}  // namespace twinop::jax_binding

int TwinopBiasActCheckArgs(int count, const char* const* dtype_names, const int* ranks,
                           const std::int64_t* const* shapes, const char* act, std::size_t act_size, char* message,
                           std::size_t message_size) {
  using namespace twinop::jax_binding;
  return report(check(describe_arrays(count, dtype_names, ranks, shapes), std::string_view(act, act_size)), message,
                message_size);
}
