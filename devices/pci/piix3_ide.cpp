#include "devices/pci/piix3_ide.h"

namespace vmm86 {
namespace {

constexpr uint32_t kIdeClass = 0x010180;
// 82371SB function 1 PCICMD: I/O space and bus master are the writable enables; PCISTS:
// fast back-to-back capable, medium DEVSEL.
constexpr uint16_t kCommandWritable = pci_command::kIoSpace | pci_command::kBusMaster;
constexpr uint16_t kStatusReset = 0x0280;
constexpr uint8_t kLatencyTimerWritable = 0xF0;
constexpr uint16_t kDecodeEnable = 0x8000;
constexpr uint8_t kSlaveTiming = 0x44;  // SIDETIM

}  // namespace

Piix3Ide::Piix3Ide()
    : PciFunction(PciIdentity{.vendor_id = kVendorId,
                              .device_id = kDeviceId,
                              .revision = 0,
                              .class_code = kIdeClass,
                              .header_type = 0,
                              .subsystem_vendor_id = 0,
                              .subsystem_id = 0,
                              .interrupt_pin = 0}) {
  define_register(pci_reg::kCommand, 2, 0, kCommandWritable);
  define_register(pci_reg::kStatus, 2, kStatusReset, 0, pci_status::kWriteOneToClear);
  define_register(pci_reg::kCacheLineSize, 1, 0, 0);
  define_register(pci_reg::kLatencyTimer, 1, 0, kLatencyTimerWritable);
  define_register(pci_reg::kInterruptLine, 1, 0, 0);
  define_bar(kBusMasterBar, PciSpace::Io, kBusMasterSize);
  define_register(kIdeTiming, 2, 0, 0xFFFF);
  define_register(kIdeTiming + 2, 2, 0, 0xFFFF);
  define_register(kSlaveTiming, 1, 0, 0xFF);
}

bool Piix3Ide::channel_decode_enabled(unsigned channel) const {
  return (config_word(static_cast<uint8_t>(kIdeTiming + 2 * channel)) & kDecodeEnable) != 0;
}

}  // namespace vmm86
