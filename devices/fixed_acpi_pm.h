// The ACPI power-management hardware of a machine without the PCI chipset (a direct
// `--kernel` boot): the same PIIX4 PM model the chipset has (devices/pci/piix4_pm.h: PM1
// event and control registers, the PM timer, S5 power-off, GPE0, the SCI on IRQ 9), with
// its PM block decoded at the fixed ports where SeaBIOS places it on QEMU (0x600: its
// PMBA when QEMU hands it the ACPI tables) rather than through PMBA, plus GPE0 at 0xAFE0
// and the APM command port 0xB2 that turns ACPI mode on. So the FADT is the same on every
// boot path. docs/design-notes.md ("ACPI PM on direct kernel boots") says why not the
// whole chipset.
#pragma once

#include <functional>

#include "devices/clock/virtual_clock.h"
#include "devices/pc_platform.h"
#include "devices/pci/apm_control.h"
#include "devices/pci/piix4_pm.h"

namespace vmm86 {

class FixedAcpiPm {
 public:
  static constexpr uint16_t kPmIoBase = 0x600;

  /// Registers the ports on `platform`'s I/O bus; the SCI drives IRQ 9 of its 8259. Both
  /// `platform` and `clock` must outlive it.
  FixedAcpiPm(PcPlatform& platform, const VirtualClock& clock);
  FixedAcpiPm(const FixedAcpiPm&) = delete;
  FixedAcpiPm& operator=(const FixedAcpiPm&) = delete;

  /// The guest entered S5 through PM1a control (an ACPI power-off).
  void set_power_off(std::function<void()> callback) { pm_.set_power_off(std::move(callback)); }
  [[nodiscard]] Piix4Pm& pm() { return pm_; }

 private:
  Piix4Pm pm_;
  ApmControl apm_;
};

}  // namespace vmm86
