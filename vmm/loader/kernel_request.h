// What `vmm86 run --kernel FILE [--initrd ...] [--append ...]` asks of a kernel loader: the
// request the Linux boot protocol loader (linux_boot.h) and the Multiboot loader
// (multiboot.h) both take, and kernel_boot.h hands to whichever the file needs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/arch/types.h"
#include "vmm/loader/e820.h"

namespace vmm86 {

/// Bytes the platform puts into guest RAM before the kernel starts, where a BIOS would
/// have left them (ACPI and MP tables); `holes` must keep them out of the RAM ranges.
struct FirmwareBlob {
  GuestPhys address{};
  std::vector<uint8_t> bytes;
};

struct KernelRequest {
  std::string kernel_path;
  /// --initrd: for Linux the initrd file, for Multiboot the module list in QEMU's syntax
  /// ("FILE ARGS,FILE ARGS"); empty: none.
  std::string initrd;
  std::string cmdline;  ///< --append
  /// Ranges the platform claims inside or above RAM (device memory, firmware tables); the
  /// memory map shows them instead of RAM.
  std::vector<linux_boot::E820Range> holes;
  /// Written into guest RAM by the loader, after the kernel.
  std::vector<FirmwareBlob> firmware_data = {};
};

/// Writes every blob of `blobs` into `memory`.
[[nodiscard]] inline Status write_firmware_data(GuestMemory& memory, std::span<const FirmwareBlob> blobs) {
  for (const FirmwareBlob& blob : blobs) {
    if (!memory.write(blob.address, blob.bytes.data(), blob.bytes.size())) {
      return make_error("guest RAM does not hold the firmware tables at {:#x}", blob.address.value);
    }
  }
  return ok_status();
}

}  // namespace vmm86
