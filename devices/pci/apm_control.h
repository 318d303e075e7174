// The APM control ports of the i440FX PC (PIIX4 APMC/APMS): 0xB2, the APM command port,
// and 0xB3, the APM status port. On hardware a write to 0xB2 raises an SMI when
// DEVACTB.APMC_EN is set; there is no SMM here, so the command goes to a callback
// instead (the machine hands it to Piix4Pm::apm_command, which does what SeaBIOS's SMI
// handler would for the ACPI enable/disable commands). 0xB3 is a plain scratch register
// that firmware and SMI handlers use to pass a byte. Both read back what was written.
#pragma once

#include <cstdint>
#include <functional>

#include "devices/io_device.h"

namespace vmm86 {

class ApmControl final : public PortIoDevice {
 public:
  static constexpr uint16_t kBasePort = 0xB2;
  static constexpr uint32_t kPortCount = 2;

  /// Offset 0: APMC (0xB2), offset 1: APMS (0xB3). Byte-wide.
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;

  /// Called with each byte written to 0xB2, from inside the guest's `out`.
  void set_command_handler(std::function<void(uint8_t)> handler) { handler_ = std::move(handler); }
  [[nodiscard]] uint8_t command() const { return command_; }
  [[nodiscard]] uint8_t status() const { return status_; }

 private:
  std::function<void(uint8_t)> handler_;
  uint8_t command_ = 0;
  uint8_t status_ = 0;
};

}  // namespace vmm86
