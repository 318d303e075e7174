#include "devices/display/stdvga_pci.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace vmm86 {
namespace {

constexpr uint32_t kVgaClass = 0x030000;
constexpr uint8_t kRevision = 0x02;  // QEMU's VGA since 2.x
// QEMU's own subsystem IDs for its emulated devices (Red Hat, QEMU).
constexpr uint16_t kSubsystemVendor = 0x1AF4;
constexpr uint16_t kSubsystem = 0x1100;
constexpr uint8_t kRomBar = 0x30;
constexpr uint32_t kRomEnable = 0x01;
constexpr uint32_t kBarPrefetchable = 0x08;
constexpr uint32_t kMinRomSize = 2048;  // the smallest the ROM BAR decodes (PCI 3.0 §6.2.5.2)

}  // namespace

StdVgaPci::StdVgaPci(std::vector<uint8_t> rom, uint32_t lfb_size)
    : PciFunction(PciIdentity{.vendor_id = kVendorId,
                              .device_id = kDeviceId,
                              .revision = kRevision,
                              .class_code = kVgaClass,
                              .header_type = 0,
                              .subsystem_vendor_id = kSubsystemVendor,
                              .subsystem_id = kSubsystem,
                              .interrupt_pin = 0}) {
  define_register(pci_reg::kCommand, 2, 0, pci_command::kIoSpace | pci_command::kMemorySpace);
  define_bar(kLfbBar, PciSpace::Memory, lfb_size);
  define_register(pci_reg::kBar0, 4, kBarPrefetchable, ~(lfb_size - 1));
  define_bar(kMmioBar, PciSpace::Memory, kMmioBarSize);
  rom_.bytes = std::move(rom);
  if (!rom_.bytes.empty()) {
    const uint32_t size = std::max(kMinRomSize, std::bit_ceil(static_cast<uint32_t>(rom_.bytes.size())));
    rom_region_ = add_custom_region(PciSpace::Memory, size);
    define_register(kRomBar, 4, 0, ~(size - 1) | kRomEnable);
  }
}

std::optional<uint32_t> StdVgaPci::custom_region_base(unsigned region) const {
  if (region != rom_region_ || !has_rom()) return std::nullopt;
  const uint32_t bar = config_dword(kRomBar);
  // Decoded with both its own enable and the memory space enable (PCI 3.0 §6.2.5.2).
  if ((bar & kRomEnable) == 0 || !memory_space_enabled()) return std::nullopt;
  const uint32_t base = bar & ~(this->region(region).size - 1);
  if (base == 0) return std::nullopt;
  return base;
}

uint32_t StdVgaPci::Rom::read(uint64_t offset, unsigned size) {
  uint32_t v = 0;
  for (unsigned i = 0; i < size; ++i) {
    const uint64_t at = offset + i;
    v |= uint32_t{at < bytes.size() ? bytes[at] : uint8_t{0xFF}} << (8 * i);
  }
  return v;
}

}  // namespace vmm86
