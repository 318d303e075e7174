// Fatal invariants. VMM86_CHECK(condition) or VMM86_CHECK(condition, "fmt text {}", args...)
// stops the monitor with the file, the line, the condition and the message when the
// condition is false, in every build: a monitor that goes on past a broken invariant
// corrupts the guest silently. It is for bugs of vmm86, never for guest or user errors
// (those are Result<T>, common/result.h). assert() stays the debug-only level, for checks
// too costly for hot paths in release builds. Not for signal handlers (it formats).
#pragma once

#include <fmt/format.h>

#include <string>

namespace vmm86::detail {

/// Prints "vmm86: fatal: FILE:LINE: check failed: CONDITION[: MESSAGE]" and aborts
/// (SIGABRT: the console's handler restores the terminal on the way).
[[noreturn]] void check_failed(const char* file, int line, const char* condition, const std::string& message = {});

}  // namespace vmm86::detail

#define VMM86_CHECK(condition, ...)                                                                           \
  do {                                                                                                        \
    if (!(condition)) [[unlikely]] {                                                                          \
      ::vmm86::detail::check_failed(__FILE__, __LINE__, #condition __VA_OPT__(, ::fmt::format(__VA_ARGS__))); \
    }                                                                                                         \
  } while (0)
