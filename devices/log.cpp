#include "devices/log.h"

#include <cstdio>

namespace vmm86 {

LogFn stderr_log() {
  return [](std::string_view message) {
    std::fprintf(stderr, "vmm86: %.*s\n", static_cast<int>(message.size()), message.data());
  };
}

LogFn log_or_stderr(LogFn fn) { return fn ? std::move(fn) : stderr_log(); }

}  // namespace vmm86
