// The I/O ports through which QEMU's ACPI tables (the DSDT that SeaBIOS installs on QEMU)
// ask about hotplug: PCI slots at 0xAE00 (PCIU slots added, PCID slots removed, B0EJ eject)
// and CPUs at 0xAF00 (a bitmap of present CPUs). The AML reads them when a GPE fires and
// acts on every bit set: an unclaimed port reads all-ones, which tells Linux that every PCI
// slot was emptied (it removes 00:01.x) and that 256 CPUs arrived. vmm86 has no hotplug,
// so the PCI registers read 0, ejects are ignored, and only CPU 0 is present.
#pragma once

#include <cstdint>

#include "devices/io_device.h"

namespace vmm86 {

class PciHotplugPorts final : public PortIoDevice {
 public:
  static constexpr uint16_t kBasePort = 0xAE00;
  static constexpr uint32_t kPortCount = 0x14;  ///< PCIU, PCID, B0EJ, PCI_RMV, SEL: 4 bytes each

  uint32_t read(uint16_t, unsigned) override { return 0; }
  void write(uint16_t, unsigned, uint32_t) override {}
};

class CpuHotplugPorts final : public PortIoDevice {
 public:
  static constexpr uint16_t kBasePort = 0xAF00;
  static constexpr uint32_t kPortCount = 32;  ///< one bit per CPU, 256 CPUs

  /// Byte 0 bit 0: CPU 0; nothing else is present.
  uint32_t read(uint16_t offset, unsigned size) override { return offset == 0 && size >= 1 ? 1 : 0; }
  void write(uint16_t, unsigned, uint32_t) override {}
};

}  // namespace vmm86
