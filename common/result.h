// A value or an error message: the one way cold paths (loaders, the command line, the
// console, machine and device setup) report failures that the user has to read (bad files,
// bad options, host refusals). Not for hot paths; no exceptions involved.
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace vmm86 {

/// A failure explained in one line, for a human (no trailing period, no newline).
struct Error {
  std::string message;
};

/// Builds an Error with fmt formatting.
template <typename... Args>
[[nodiscard]] Error make_error(fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...)};
}

/// Either a T or an Error. Test with ok() / operator bool before touching value().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  [[nodiscard]] T& value() & { return std::get<0>(state_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(state_); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error message; only valid when !ok().
  [[nodiscard]] const std::string& error() const { return std::get<1>(state_).message; }
  /// Moves the error out, to pass it up unchanged.
  [[nodiscard]] Error take_error() && { return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

/// Success or an Error, for operations that produce nothing.
using Status = Result<std::monostate>;
[[nodiscard]] inline Status ok_status() { return Status(std::monostate{}); }

}  // namespace vmm86

/// Evaluates a Result or Status and, when it failed, returns its Error from the enclosing
/// function (which returns any Result); the value, if any, is dropped.
#define VMM86_TRY(expression)                                      \
  do {                                                             \
    if (auto vmm86_try_result = (expression); !vmm86_try_result) { \
      return std::move(vmm86_try_result).take_error();             \
    }                                                              \
  } while (0)
