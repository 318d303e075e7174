// The chipset of a PC that boots through its BIOS, as QEMU's `pc` machine has it (so that
// Debian's SeaBIOS and Linux drive it unmodified): PCI configuration mechanism #1 at
// 0xCF8, the i440FX host bridge at 00:00.0 (PAM shadow-RAM control), the PIIX3 ISA bridge
// at 00:01.0 (PIRQ routing to the 8259), the PIIX3 IDE function at 00:01.1 and the PIIX4
// power-management function at 00:01.3 (ACPI PM timer, SCI on IRQ 9, S5 power-off), plus
// the APM control ports 0xB2/0xB3, and the ports QEMU's ACPI tables read (GPE0 at 0xAFE0,
// hotplug at 0xAE00 and 0xAF00: devices/pci/acpi_hotplug_ports.h). BARs the firmware places land in fixed PCI windows:
// I/O 0x600-0x7FF (the PM and SMBus blocks where SeaBIOS puts them when QEMU hands it the
// ACPI tables), 0xA000-0xBFFF (GPE; PM and SMBus otherwise) and 0xC000-0xFFFF, memory
// E0000000-FEBFFFFF.
// The direct Linux boot has none of this (the kernel finds no PCI and uses the legacy PC).
#pragma once

#include <functional>

#include "devices/clock/virtual_clock.h"
#include "devices/log.h"
#include "devices/pc_platform.h"
#include "devices/pci/acpi_hotplug_ports.h"
#include "devices/pci/apm_control.h"
#include "devices/pci/i440fx_host_bridge.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/pci_region_mapper.h"
#include "devices/pci/pci_windows.h"
#include "devices/pci/piix3_ide.h"
#include "devices/pci/piix3_isa_bridge.h"
#include "devices/pci/piix4_pm.h"

namespace vmm86 {

class PcChipset {
 public:
  /// Registers everything on `platform`'s buses; `clock` drives the PM timer. Both must
  /// outlive the chipset. Without `acpi` the PIIX4 PM function is left off the bus, as
  /// QEMU's `pc` leaves it out with acpi=off (SeaBIOS then makes no ACPI tables).
  PcChipset(PcPlatform& platform, const VirtualClock& clock, LogFn log = {}, bool acpi = true);
  PcChipset(const PcChipset&) = delete;
  PcChipset& operator=(const PcChipset&) = delete;

  /// The firmware changed what a PAM segment of C0000-FFFFF reads and writes.
  void set_pam_listener(I440fxHostBridge::PamListener listener) { host_.set_pam_listener(std::move(listener)); }
  /// The guest entered S5 through the PM control register (an ACPI power-off).
  void set_power_off(std::function<void()> callback) { pm_.set_power_off(std::move(callback)); }
  /// The guest reset the machine through the PIIX3 reset control register (0xCF9).
  void set_reset_request(std::function<void()> callback) { bus_.set_reset_request(std::move(callback)); }

  [[nodiscard]] PciBus& bus() { return bus_; }
  [[nodiscard]] I440fxHostBridge& host_bridge() { return host_; }
  [[nodiscard]] Piix3IsaBridge& isa_bridge() { return isa_; }
  [[nodiscard]] Piix3Ide& ide() { return ide_; }
  [[nodiscard]] Piix4Pm& power_management() { return pm_; }
  [[nodiscard]] PciRegionMapper& mapper() { return mapper_; }

  /// PCI slots of the functions (bus 0).
  static constexpr unsigned kHostBridgeSlot = 0;
  static constexpr unsigned kPiixSlot = 1;
  static constexpr unsigned kIsaFunction = 0, kIdeFunction = 1, kPmFunction = 3;

 private:
  PciBus bus_;
  I440fxHostBridge host_;
  Piix3IsaBridge isa_;
  Piix3Ide ide_;
  Piix4Pm pm_;
  ApmControl apm_;
  PciHotplugPorts pci_hotplug_;
  CpuHotplugPorts cpu_hotplug_;
  PciWindows windows_;
  PciRegionMapper mapper_;
};

}  // namespace vmm86
