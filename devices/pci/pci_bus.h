// PCI bus 0 behind configuration mechanism #1 (PCI 3.0 §3.2.2.3.2), the ports 0xCF8-0xCFF
// of the i440FX PC:
//   * 0xCF8, dword accesses only: CONFIG_ADDRESS. Bit 31 enables, bits 23:16 bus, 15:11
//     device, 10:8 function, 7:2 register; bits 30:24 and 1:0 read 0 (82441FX CONFADD).
//   * 0xCFC-0xCFF: CONFIG_DATA, byte/word/dword at any offset; the offset within the
//     dword selects the byte of the register.
//   * A byte or word access to 0xCF8-0xCFB is not CONFIG_ADDRESS: the 82441FX passes it
//     to PCI as an ordinary I/O cycle. There the PIIX3 claims 0xCF9, its Reset Control
//     register (bit 1 SRST hard reset, bit 2 RCPU: a 0-to-1 transition resets); the other
//     bytes float high. Linux's reboot=pci writes 0x02 then 0x06.
// With the enable bit clear, or for a bus other than 0 (no PCI-to-PCI bridges here),
// CONFIG_DATA reads all-ones and writes are dropped, as a master abort does. A function
// nobody registered reads all-ones, which is how software sees that it is absent.
// Function 0 of a device with further functions reads its header type with bit 7 set.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "devices/io_device.h"
#include "devices/pci/pci_function.h"

namespace vmm86 {

class PciBus final : public PortIoDevice {
 public:
  static constexpr uint16_t kBasePort = 0xCF8;
  static constexpr uint32_t kPortCount = 8;
  static constexpr unsigned kRegisterWidth = 4;  ///< register with IoBus::add(..., width 4)
  static constexpr unsigned kDevices = 32;
  static constexpr unsigned kFunctions = 8;
  static constexpr uint32_t kEnable = 0x8000'0000;

  /// Config-address value that selects bus 0, `device`, `function`, dword `reg`.
  [[nodiscard]] static constexpr uint32_t address(unsigned device, unsigned function, uint8_t reg) {
    return kEnable | (device << 11) | (function << 8) | (reg & 0xFCu);
  }

  /// Places `function` (which must outlive the bus) at (device, function); false if the
  /// slot is taken or out of range.
  [[nodiscard]] bool attach(unsigned device, unsigned function_number, PciFunction& function);
  [[nodiscard]] PciFunction* function(unsigned device, unsigned function_number) const;

  /// Offsets from 0xCF8.
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;

  /// Configuration access from the host side (bus 0), what CONFIG_DATA does after
  /// CONFIG_ADDRESS selected the register. `reg` + `size` stay within one dword.
  [[nodiscard]] uint32_t config_read(unsigned device, unsigned function_number, uint8_t reg, unsigned size) const;
  void config_write(unsigned device, unsigned function_number, uint8_t reg, unsigned size, uint32_t value);

  [[nodiscard]] uint32_t config_address() const { return config_address_; }
  [[nodiscard]] uint8_t reset_control() const { return reset_control_; }
  /// Called from inside the guest's `out 0xCF9` that requests a reset; it should only set
  /// a flag for the run loop.
  void set_reset_request(std::function<void()> callback) { reset_request_ = std::move(callback); }

  /// PCI RST#: CONFIG_ADDRESS and Reset Control to 0, every function to power-on values.
  void reset();

 private:
  [[nodiscard]] uint32_t read_byte(uint16_t offset) const;
  void write_byte(uint16_t offset, uint8_t value);
  [[nodiscard]] PciFunction* selected() const;

  std::array<PciFunction*, kDevices * kFunctions> functions_{};
  uint32_t config_address_ = 0;
  uint8_t reset_control_ = 0;
  std::function<void()> reset_request_;
};

}  // namespace vmm86
