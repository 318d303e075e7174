// What the firmware tables (ACPI: acpi_tables.h, Intel MP: mp_table.h) say about the
// machine: plain facts the machine fills in from its configuration. The defaults are the
// PC of QEMU's `pc` machine as SeaBIOS sets it up when QEMU hands it the ACPI tables: the
// PIIX4 PM block at 0x600, GPE0 at 0xAFE0, SCI on IRQ 9, the APM command port 0xB2.
#pragma once

#include <cstdint>

namespace vmm86 {

struct PlatformTablesConfig {
  /// CPUs, with local APIC IDs 0..cpu_count-1; CPU 0 boots.
  unsigned cpu_count = 1;
  /// The machine has a local APIC per CPU and an IOAPIC (24 pins; ISA IRQ 0 on pin 2, the
  /// others on the pin of their number). Without them there is no MADT and no MP table.
  bool apic = false;
  uint32_t local_apic_address = 0xFEE00000;
  uint32_t io_apic_address = 0xFEC00000;
  /// The IOAPIC's ID: after the CPUs' APIC IDs, as QEMU and SeaBIOS number it.
  [[nodiscard]] uint8_t io_apic_id() const { return static_cast<uint8_t>(cpu_count); }
  static constexpr unsigned kIoApicPins = 24;

  /// ACPI PM registers: PM1a event block at pm_io_base (4 bytes), PM1a control at +4 (2),
  /// the PM timer at +8 (4, 24 bits), the GPE0 block (4 bytes).
  uint16_t pm_io_base = 0x600;
  uint16_t gpe0_base = 0xAFE0;
  uint8_t sci_irq = 9;
  /// The port the OS writes acpi_enable/acpi_disable to (0: always in ACPI mode).
  uint16_t smi_command_port = 0xB2;
  uint8_t acpi_enable = 0xF1;
  uint8_t acpi_disable = 0xF0;
  /// The CMOS index of the century byte (0: none).
  uint8_t rtc_century_index = 0x32;

  /// A PCI bus 0 behind an i440FX host bridge (configuration mechanism #1), with a memory
  /// window [pci_mmio_start, pci_mmio_end] for BARs. Without it the ISA devices hang
  /// directly under \_SB.
  bool pci = false;
  uint32_t pci_mmio_start = 0xE0000000;
  uint32_t pci_mmio_end = 0xFEBFFFFF;

  /// The machine has ACPI (an SCI): the MP table then marks the SCI's IRQ level-triggered,
  /// active high, as the MADT does.
  bool acpi = true;
  /// CPUID leaf 1 EAX and EDX, which the MP table's processor entries repeat.
  uint32_t cpu_signature = 0x0600;
  uint32_t cpu_features = 0;
  /// The local APIC version register's low byte (integrated APICs are 0x1X).
  uint8_t local_apic_version = 0x14;
  uint8_t io_apic_version = 0x11;

  /// Legacy devices the DSDT lists (COM1, the RTC and the keyboard controller always).
  bool com2 = false;
  bool floppy = false;
};

}  // namespace vmm86
