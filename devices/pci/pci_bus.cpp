#include "devices/pci/pci_bus.h"

namespace vmm86 {
namespace {

constexpr uint32_t kAddressWritable = 0x80FF'FFFC;  // bits 30:24 and 1:0 are reserved
constexpr uint16_t kDataOffset = 4;
constexpr uint16_t kResetControlOffset = 1;  // port 0xCF9
constexpr uint8_t kResetControlWritable = 0x06;
constexpr uint8_t kResetCpu = 0x04;
constexpr uint8_t kMultiFunction = 0x80;

constexpr uint32_t all_ones(unsigned size) { return size >= 4 ? 0xFFFF'FFFFu : (1u << (8 * size)) - 1; }

constexpr unsigned field(uint32_t address, unsigned shift, uint32_t mask) { return (address >> shift) & mask; }

}  // namespace

bool PciBus::attach(unsigned device, unsigned function_number, PciFunction& function) {
  if (device >= kDevices || function_number >= kFunctions) return false;
  PciFunction*& slot = functions_[device * kFunctions + function_number];
  if (slot != nullptr) return false;
  slot = &function;
  return true;
}

PciFunction* PciBus::function(unsigned device, unsigned function_number) const {
  if (device >= kDevices || function_number >= kFunctions) return nullptr;
  return functions_[device * kFunctions + function_number];
}

uint32_t PciBus::config_read(unsigned device, unsigned function_number, uint8_t reg, unsigned size) const {
  const PciFunction* f = function(device, function_number);
  if (f == nullptr) return all_ones(size);
  uint32_t value = f->config_read(reg, size);
  // Software scans functions 1-7 only when function 0 says the device has them.
  if (function_number == 0 && reg <= pci_reg::kHeaderType && pci_reg::kHeaderType < reg + size) {
    for (unsigned fn = 1; fn < kFunctions; ++fn) {
      if (function(device, fn) == nullptr) continue;
      value |= uint32_t{kMultiFunction} << (8 * (pci_reg::kHeaderType - reg));
      break;
    }
  }
  return value;
}

void PciBus::config_write(unsigned device, unsigned function_number, uint8_t reg, unsigned size, uint32_t value) {
  PciFunction* f = function(device, function_number);
  if (f != nullptr) f->config_write(reg, size, value);
}

PciFunction* PciBus::selected() const {
  if ((config_address_ & kEnable) == 0 || field(config_address_, 16, 0xFF) != 0) return nullptr;
  return function(field(config_address_, 11, 0x1F), field(config_address_, 8, 0x7));
}

uint32_t PciBus::read(uint16_t offset, unsigned size) {
  if (offset == 0 && size == 4) return config_address_;
  if (offset < kDataOffset) {
    uint32_t value = 0;
    for (unsigned i = 0; i < size; ++i) value |= read_byte(static_cast<uint16_t>(offset + i)) << (8 * i);
    return value;
  }
  if (selected() == nullptr) return all_ones(size);
  const auto reg = static_cast<uint8_t>((config_address_ & 0xFC) + (offset - kDataOffset));
  return config_read(field(config_address_, 11, 0x1F), field(config_address_, 8, 0x7), reg, size);
}

void PciBus::write(uint16_t offset, unsigned size, uint32_t value) {
  if (offset == 0 && size == 4) {
    config_address_ = value & kAddressWritable;
    return;
  }
  if (offset < kDataOffset) {
    for (unsigned i = 0; i < size; ++i) {
      write_byte(static_cast<uint16_t>(offset + i), static_cast<uint8_t>(value >> (8 * i)));
    }
    return;
  }
  if (selected() == nullptr) return;
  const auto reg = static_cast<uint8_t>((config_address_ & 0xFC) + (offset - kDataOffset));
  config_write(field(config_address_, 11, 0x1F), field(config_address_, 8, 0x7), reg, size, value);
}

// A non-dword access below CONFIG_DATA (or one straddling it, which the CPU would have
// split) is taken byte by byte.
uint32_t PciBus::read_byte(uint16_t offset) const {
  if (offset == kResetControlOffset) return reset_control_;
  if (offset < kDataOffset) return 0xFF;
  const PciFunction* f = selected();
  if (f == nullptr) return 0xFF;
  const auto reg = static_cast<uint8_t>((config_address_ & 0xFC) + (offset - kDataOffset));
  return config_read(field(config_address_, 11, 0x1F), field(config_address_, 8, 0x7), reg, 1);
}

void PciBus::write_byte(uint16_t offset, uint8_t value) {
  if (offset == kResetControlOffset) {
    const bool rising = (reset_control_ & kResetCpu) == 0 && (value & kResetCpu) != 0;
    reset_control_ = value & kResetControlWritable;
    if (rising && reset_request_) reset_request_();
    return;
  }
  if (offset < kDataOffset || selected() == nullptr) return;
  const auto reg = static_cast<uint8_t>((config_address_ & 0xFC) + (offset - kDataOffset));
  config_write(field(config_address_, 11, 0x1F), field(config_address_, 8, 0x7), reg, 1, value);
}

void PciBus::reset() {
  config_address_ = 0;
  reset_control_ = 0;
  for (PciFunction* f : functions_) {
    if (f != nullptr) f->reset();
  }
}

}  // namespace vmm86
