#include "common/check.h"

#include <cstdio>
#include <cstdlib>

namespace vmm86::detail {

void check_failed(const char* file, int line, const char* condition, const std::string& message) {
  std::fprintf(stderr, "vmm86: fatal: %s:%d: check failed: %s%s%s\n", file, line, condition,
               message.empty() ? "" : ": ", message.c_str());
  std::abort();
}

}  // namespace vmm86::detail
