// Named exception types for user-facing problems: each message names the file and the problem.
#pragma once
#include <stdexcept>
#include <string>

namespace excel {

// A file or value given by the user is missing or unusable.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file exists but its content does not have the expected layout (shape, dtype, key).
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Flags or configuration are inconsistent.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace excel
