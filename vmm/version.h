#pragma once

namespace vmm86 {
/// "vmm86 X.Y" as printed by --version.
const char* version_string();
}  // namespace vmm86
