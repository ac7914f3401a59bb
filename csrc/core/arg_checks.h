// The argument checks every op shares, on framework-free descriptions of tensors: each binding
// describes its tensors with TensorInfo, calls an op's rules (bias_act_args.h, rms_norm_args.h),
// and raises any returned ArgError in its framework's own exception type (TypeError /
// ValueError / InvalidArgument).
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "types.h"

namespace twinop {

struct TensorInfo {
  std::vector<std::int64_t> shape;
  std::optional<DType> dtype;  // empty: a dtype the op does not support
  std::string dtype_name;      // the framework's own name, for messages
};

struct ArgError {
  enum class Kind { kType, kValue } kind;
  std::string message;
};

// The [rows, cols] view the kernels use: cols = x.shape[-1], rows = product of the rest.
struct Matrix2D {
  std::int64_t rows;
  std::int64_t cols;
};

inline Matrix2D as_matrix(const std::vector<std::int64_t>& x_shape) {
  std::int64_t rows = 1;
  for (std::size_t i = 0; i + 1 < x_shape.size(); ++i) rows *= x_shape[i];
  return {rows, x_shape.back()};
}

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// A name the caller passed, fit to quote in a message: its first 64 bytes, those other than
// printable ASCII as \xNN, so the message is one line of valid text whatever was passed (an
// embedded NUL would end it where a framework copies it as a C string).
inline std::string quoted(std::string_view name) {
  constexpr std::size_t kMaxBytes = 64;
  constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (const char c : name.substr(0, kMaxBytes)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F) {
      out += c;
    } else {
      out += {'\\', 'x', kHex[byte >> 4], kHex[byte & 0xF]};
    }
  }
  out += '\'';
  return name.size() > kMaxBytes ? out + "... (" + std::to_string(name.size()) + " bytes)" : out;
}

// The input every op normalizes or maps along its last axis: a supported float dtype, at least 1-D.
inline std::optional<ArgError> check_x_arg(const TensorInfo& x, const std::string& name = "x") {
  if (!x.dtype)
    return ArgError{ArgError::Kind::kType, name + " must be float32, float64, float16 or bfloat16; got " + x.dtype_name};
  if (x.shape.empty())
    return ArgError{ArgError::Kind::kValue, name + " must have at least 1 dimension (features last); got a 0-d tensor"};
  return std::nullopt;
}

// `name` must have the dtype and shape of `like` (named like_name).
inline std::optional<ArgError> check_same_as(const char* name, const TensorInfo& t, const char* like_name,
                                             const TensorInfo& like) {
  if (t.dtype != like.dtype)
    return ArgError{ArgError::Kind::kType, std::string(name) + " must have the dtype of " + like_name + " (" +
                                               like.dtype_name + "); got " + t.dtype_name};
  if (t.shape != like.shape)
    return ArgError{ArgError::Kind::kValue, std::string(name) + " must have the shape of " + like_name + " " +
                                                shape_string(like.shape) + "; got " + shape_string(t.shape)};
  return std::nullopt;
}

// A float attribute as a message quotes it: "1e-06", "-2", "nan", "inf".
inline std::string number_string(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// A float attribute (eps, offset): finite, and >= 0 where `non_negative`.
inline std::optional<ArgError> check_float_attr(const char* name, double value, bool non_negative) {
  if (std::isfinite(value) && !(non_negative && value < 0)) return std::nullopt;
  const std::string rule = non_negative ? " must be finite and >= 0" : " must be finite";
  return ArgError{ArgError::Kind::kValue, name + rule + "; got " + number_string(value)};
}

// A dense buffer's bytes [begin, end), for the overlap rule of outputs the caller passes in.
struct ByteRange {
  std::uintptr_t begin;
  std::uintptr_t end;
};

inline ByteRange byte_range(const void* data, std::int64_t elements, std::size_t element_bytes) {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  return {begin, begin + static_cast<std::uintptr_t>(elements) * element_bytes};
}

// Rules for an output the caller passes in (out=): `like`'s dtype and shape, and contiguous.
inline std::optional<ArgError> check_out_arg(const char* name, const TensorInfo& out, bool out_contiguous,
                                             const char* like_name, const TensorInfo& like) {
  if (auto error = check_same_as(name, out, like_name, like)) return error;
  if (!out_contiguous) return ArgError{ArgError::Kind::kValue, std::string(name) + " must be contiguous"};
  return std::nullopt;
}

// An output shares no memory with an input the kernel reads, unless it is that input exactly and
// may_be_same: the CPU kernels read each element before they write it, so they can run in place.
inline std::optional<ArgError> check_out_overlap(const char* name, ByteRange out, const char* input_name,
                                                 ByteRange input, bool may_be_same) {
  const bool empty = out.begin == out.end || input.begin == input.end;
  if (empty || out.end <= input.begin || input.end <= out.begin) return std::nullopt;
  if (may_be_same && out.begin == input.begin && out.end == input.end) return std::nullopt;
  return ArgError{ArgError::Kind::kValue, std::string(name) + " must not share memory with " + input_name +
                                              (may_be_same ? std::string(" unless it is ") + input_name + " itself"
                                                           : std::string())};
}

}  // namespace twinop
