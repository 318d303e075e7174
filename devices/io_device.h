// The uniform interface every device model sits behind (STYLE.md #9). A device sees
// offsets from the base it was registered at, never absolute ports or addresses, so the
// same model can be placed anywhere (COM1 and COM2 are one class at two bases).
// Devices run on the vCPU thread: no locking here or in any implementation.
#pragma once

#include <cstdint>

namespace vmm86 {

/// A device on the 64 KiB I/O port space.
class PortIoDevice {
 public:
  virtual ~PortIoDevice() = default;
  /// `size` is 1, 2 or 4 bytes and never wider than the width the device was registered
  /// with (the bus splits wider accesses). The result is zero-extended.
  virtual uint32_t read(uint16_t offset, unsigned size) = 0;
  /// `value` holds `size` bytes in its low bits; the rest is zero.
  virtual void write(uint16_t offset, unsigned size, uint32_t value) = 0;
};

/// A device on the guest-physical address space (memory-mapped I/O).
class MmioDevice {
 public:
  virtual ~MmioDevice() = default;
  /// `size` is 1, 2 or 4 bytes and never wider than the registered width (the bus splits
  /// 8-byte accesses into two 4-byte ones, low half first).
  virtual uint32_t read(uint64_t offset, unsigned size) = 0;
  virtual void write(uint64_t offset, unsigned size, uint32_t value) = 0;
};

}  // namespace vmm86
