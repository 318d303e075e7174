#include "vmm/version.h"

namespace vmm86 {
const char* version_string() { return "vmm86 0.1"; }
}  // namespace vmm86
