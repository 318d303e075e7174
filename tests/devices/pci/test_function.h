// A generic PCI function for the bus and base-class tests: an I/O BAR, a memory BAR, and
// devices that record what reaches them through the buses.
#pragma once

#include <cstdint>
#include <vector>

#include "devices/io_device.h"
#include "devices/pci/pci_function.h"

namespace vmm86::test {

class TestFunction final : public PciFunction {
 public:
  static constexpr uint32_t kIoSize = 32;
  static constexpr uint32_t kMemorySize = 4096;

  TestFunction()
      : PciFunction(PciIdentity{.vendor_id = 0x1234,
                                .device_id = 0x5678,
                                .revision = 0x9A,
                                .class_code = 0xFF0000,
                                .header_type = 0,
                                .subsystem_vendor_id = 0xABCD,
                                .subsystem_id = 0xEF01,
                                .interrupt_pin = 1}) {
    define_bar(0, PciSpace::Io, kIoSize);
    define_bar(1, PciSpace::Memory, kMemorySize);
  }
  /// What the device itself does to its status register.
  void set_status(uint16_t bits) { store(pci_reg::kStatus, 2, bits); }
};

struct Access {
  uint64_t offset;
  unsigned size;
  uint32_t value;
  bool write;
};

class RecordingIoDevice final : public PortIoDevice {
 public:
  uint32_t read(uint16_t offset, unsigned size) override {
    accesses.push_back({offset, size, 0, false});
    return 0xA0 + offset;
  }
  void write(uint16_t offset, unsigned size, uint32_t value) override {
    accesses.push_back({offset, size, value, true});
  }
  std::vector<Access> accesses;
};

class RecordingMmioDevice final : public MmioDevice {
 public:
  uint32_t read(uint64_t offset, unsigned size) override {
    accesses.push_back({offset, size, 0, false});
    return 0x5000'0000u + static_cast<uint32_t>(offset);
  }
  void write(uint64_t offset, unsigned size, uint32_t value) override {
    accesses.push_back({offset, size, value, true});
  }
  std::vector<Access> accesses;
};

}  // namespace vmm86::test
