// Tensor shapes in messages: "[3,224,224]".
#pragma once
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace excel {

inline std::string shape_str(c10::IntArrayRef s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

}  // namespace excel
