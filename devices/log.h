// Diagnostics from device models (unhandled ports, guest misuse). Devices never print on
// their own: they call a LogFn that the machine supplies, so tests can capture messages
// and the command-line tool can route them next to its other output.
#pragma once

#include <functional>
#include <string_view>

namespace vmm86 {

/// Receives one complete message line, without a trailing newline.
using LogFn = std::function<void(std::string_view message)>;

/// The default sink: writes "vmm86: <message>\n" to stderr.
[[nodiscard]] LogFn stderr_log();

/// `fn` if it is set, otherwise stderr_log().
[[nodiscard]] LogFn log_or_stderr(LogFn fn);

}  // namespace vmm86
