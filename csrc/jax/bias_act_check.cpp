// The argument rules (bias_act_args.h) asked by twinop.jax at trace time, where JAX knows every shape
// and dtype: a bad call raises TypeError / ValueError before anything is compiled or run, as
// JAX's own ops do, with the words of every other binding. The handlers check again when they
// run, for callers of the raw FFI targets.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bias_act_targets.h"
#include "types.h"
#include "bias_act_args.h"

namespace twinop::jax_binding {
namespace {

// By numpy's dtype name, as JAX spells it.
std::optional<DType> core_dtype(const std::string& name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float64") return DType::kFloat64;
  if (name == "float16") return DType::kFloat16;
  if (name == "bfloat16") return DType::kBFloat16;
  return std::nullopt;
}

std::optional<ArgError> check(const std::vector<TensorInfo>& t, std::string_view act_name) {
  std::optional<ArgError> error;
  switch (t.size()) {
    case 2: error = check_bias_act_args(t[0], t[1]); break;
    case 3: error = check_bias_act_backward_args(t[0], t[1], t[2]); break;
    // twinop-feature: second-order
    case 5: error = check_bias_act_double_backward_args(t[0], t[1], t[2], t[3], t[4]); break;
    // twinop-feature: end
    default: return ArgError{ArgError::Kind::kValue, "TwinopCheckArgs takes 2, 3 or 5 arrays"};
  }
  Activation act{};
  return error ? error : parse_activation_arg(act_name, &act);
}

}  // namespace
}  // namespace twinop::jax_binding

int TwinopCheckArgs(int count, const char* const* dtype_names, const int* ranks, const std::int64_t* const* shapes,
                    const char* act, std::size_t act_size, char* message, std::size_t message_size) {
  using namespace twinop;
  std::vector<TensorInfo> tensors;
  for (int i = 0; i < count; ++i) {
    tensors.push_back({{shapes[i], shapes[i] + ranks[i]}, jax_binding::core_dtype(dtype_names[i]), dtype_names[i]});
  }
  const std::optional<ArgError> error = jax_binding::check(tensors, std::string_view(act, act_size));
  if (!error) return 0;
  const std::size_t length = std::min(error->message.size(), message_size - 1);
  std::memcpy(message, error->message.data(), length);
  message[length] = '\0';
  return error->kind == ArgError::Kind::kType ? 1 : 2;
}
