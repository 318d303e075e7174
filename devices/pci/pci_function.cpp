#include "devices/pci/pci_function.h"

#include <cassert>

namespace vmm86 {
namespace {

constexpr uint8_t kBarIoSpace = 0x01;  // bit 0 of a BAR: I/O (1) or memory (0)
// I/O BARs size with all 32 bits, as QEMU's do: SeaBIOS computes a size of ~(value & ~3) + 1
// and takes a 16-bit decoder's zero upper half for 4 GiB of ports. A base past 64 KiB
// is simply not decoded.
constexpr uint32_t kIoBarAddressMask = 0xFFFF'FFFC;
constexpr uint32_t kMemoryBarAddressMask = 0xFFFF'FFF0;
constexpr uint64_t kIoSpaceEnd = 0x10000;

[[maybe_unused]] constexpr bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

constexpr uint8_t byte_of(uint32_t value, unsigned i) { return static_cast<uint8_t>(value >> (8 * i)); }

}  // namespace

PciFunction::PciFunction(const PciIdentity& identity) : regions_(kBarCount) {
  define_register(pci_reg::kVendorId, 2, identity.vendor_id, 0);
  define_register(pci_reg::kDeviceId, 2, identity.device_id, 0);
  define_register(
      pci_reg::kCommand, 2, 0,
      pci_command::kIoSpace | pci_command::kMemorySpace | pci_command::kBusMaster | pci_command::kIntxDisable);
  define_register(pci_reg::kStatus, 2, 0, 0, pci_status::kWriteOneToClear);
  define_register(pci_reg::kRevision, 1, identity.revision, 0);
  define_register(pci_reg::kClassCode, 3, identity.class_code, 0);
  define_register(pci_reg::kCacheLineSize, 1, 0, 0xFF);
  define_register(pci_reg::kLatencyTimer, 1, 0, 0xFF);
  define_register(pci_reg::kHeaderType, 1, identity.header_type, 0);
  define_register(pci_reg::kSubsystemVendorId, 2, identity.subsystem_vendor_id, 0);
  define_register(pci_reg::kSubsystemId, 2, identity.subsystem_id, 0);
  define_register(pci_reg::kInterruptLine, 1, 0, 0xFF);
  define_register(pci_reg::kInterruptPin, 1, identity.interrupt_pin, 0);
  // Everything else in the header reads 0 (BARs the function lacks, capabilities
  // pointer, expansion ROM); the device-specific area is storage.
  for (unsigned reg = pci_reg::kDeviceSpecific; reg < kConfigSize; ++reg) {
    writable_[reg] = reset_writable_[reg] = 0xFF;
  }
}

uint32_t PciFunction::config_read(uint8_t reg, unsigned size) const {
  assert((size == 1 || size == 2 || size == 4) && (reg & 3u) + size <= 4);
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= uint32_t{config_[reg + i]} << (8 * i);
  return value;
}

void PciFunction::config_write(uint8_t reg, unsigned size, uint32_t value) {
  assert((size == 1 || size == 2 || size == 4) && (reg & 3u) + size <= 4);
  for (unsigned i = 0; i < size; ++i) {
    const unsigned r = reg + i;
    const uint8_t v = byte_of(value, i);
    config_[r] = static_cast<uint8_t>((config_[r] & ~writable_[r]) | (v & writable_[r]));
    config_[r] = static_cast<uint8_t>(config_[r] & ~(v & write_one_to_clear_[r]));
  }
  config_written(reg, size);
  refresh_regions();
}

uint16_t PciFunction::config_word(uint8_t reg) const {
  return static_cast<uint16_t>(config_[reg] | (config_[static_cast<uint8_t>(reg + 1)] << 8));
}

uint32_t PciFunction::config_dword(uint8_t reg) const {
  return uint32_t{config_word(reg)} | (uint32_t{config_word(static_cast<uint8_t>(reg + 2))} << 16);
}

void PciFunction::reset() {
  config_ = reset_values_;
  writable_ = reset_writable_;
  reset_done();
  refresh_regions();
}

void PciFunction::define_bar(unsigned bar, PciSpace space, uint32_t size) {
  assert(bar < kBarCount && is_power_of_two(size) && size >= (space == PciSpace::Io ? 4u : 16u));
  regions_[bar] = PciRegion{space, size, std::nullopt};
  const auto reg = static_cast<uint8_t>(pci_reg::kBar0 + 4 * bar);
  if (space == PciSpace::Io) {
    define_register(reg, 4, kBarIoSpace, kIoBarAddressMask & ~(size - 1));
  } else {
    define_register(reg, 4, 0, kMemoryBarAddressMask & ~(size - 1));
  }
}

unsigned PciFunction::add_custom_region(PciSpace space, uint32_t size) {
  regions_.push_back(PciRegion{space, size, std::nullopt});
  return static_cast<unsigned>(regions_.size() - 1);
}

void PciFunction::define_register(uint8_t reg, unsigned size, uint32_t reset_value, uint32_t writable,
                                  uint32_t write_one_to_clear) {
  assert(size >= 1 && size <= 4 && reg + size <= kConfigSize);
  for (unsigned i = 0; i < size; ++i) {
    config_[reg + i] = reset_values_[reg + i] = byte_of(reset_value, i);
    writable_[reg + i] = reset_writable_[reg + i] = byte_of(writable, i);
    write_one_to_clear_[reg + i] = byte_of(write_one_to_clear, i);
  }
}

void PciFunction::set_writable(uint8_t reg, unsigned size, uint32_t writable) {
  assert(size >= 1 && size <= 4 && reg + size <= kConfigSize);
  for (unsigned i = 0; i < size; ++i) writable_[reg + i] = byte_of(writable, i);
}

void PciFunction::store(uint8_t reg, unsigned size, uint32_t value) {
  assert(size >= 1 && size <= 4 && reg + size <= kConfigSize);
  for (unsigned i = 0; i < size; ++i) config_[reg + i] = byte_of(value, i);
}

std::optional<uint32_t> PciFunction::decoded_base(unsigned region) const {
  const PciRegion& r = regions_[region];
  if (r.size == 0) return std::nullopt;
  if (region >= kBarCount) return custom_region_base(region);
  const uint32_t bar = config_dword(static_cast<uint8_t>(pci_reg::kBar0 + 4 * region));
  if (r.space == PciSpace::Io) {
    const uint32_t base = bar & kIoBarAddressMask;
    if (!io_space_enabled() || base == 0 || base + uint64_t{r.size} > kIoSpaceEnd) return std::nullopt;
    return base;
  }
  const uint32_t base = bar & kMemoryBarAddressMask;
  if (!memory_space_enabled() || base == 0) return std::nullopt;
  return base;
}

void PciFunction::refresh_regions() {
  for (unsigned i = 0; i < regions_.size(); ++i) {
    const std::optional<uint32_t> base = decoded_base(i);
    if (base == regions_[i].base) continue;
    const std::optional<uint32_t> previous = regions_[i].base;
    regions_[i].base = base;
    for (const RegionListener& listener : listeners_) listener(i, regions_[i], previous);
  }
}

}  // namespace vmm86
