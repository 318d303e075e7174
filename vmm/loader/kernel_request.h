// What `vmm86 run --kernel FILE [--initrd ...] [--append ...]` asks of a kernel loader: the
// request the Linux boot protocol loader (linux_boot.h) and the Multiboot loader
// (multiboot.h) both take, and kernel_boot.h hands to whichever the file needs.
#pragma once

#include <string>
#include <vector>

#include "vmm/loader/e820.h"

namespace vmm86 {

struct KernelRequest {
  std::string kernel_path;
  /// --initrd: for Linux the initrd file, for Multiboot the module list in QEMU's syntax
  /// ("FILE ARGS,FILE ARGS"); empty: none.
  std::string initrd;
  std::string cmdline;  ///< --append
  /// Ranges the platform claims inside or above RAM (device memory, firmware tables); the
  /// memory map shows them instead of RAM.
  std::vector<linux_boot::E820Range> holes;
};

}  // namespace vmm86
