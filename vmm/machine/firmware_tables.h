// The firmware tables (ACPI, MP) of the machine a MachineConfig describes: what they say
// (platform_tables_config) and, for a direct `--kernel` boot where no BIOS runs, where
// they go in guest RAM (direct_boot_tables) — the places a BIOS would leave them, so a
// Linux or Multiboot kernel finds them by scanning as it does on QEMU:
//   0xE0000-0xEFFFF  the ACPI tables (FACS, DSDT, FADT, MADT, RSDT), marked ACPI in e820
//   0xF0000          the RSDP (16-byte aligned, inside the 0xE0000-0xFFFFF scan range)
//   0xF0020          the MP floating pointer, then the MP configuration table (machines
//                    with APICs), inside the BIOS ROM range that Linux scans
// The BIOS boot hands the same ACPI tables to SeaBIOS through fw_cfg instead
// (Machine::attach_firmware_devices), and SeaBIOS makes the MP table itself.
#pragma once

#include "devices/firmware/platform_tables.h"
#include "vmm/loader/kernel_request.h"
#include "vmm/machine/config.h"

namespace vmm86 {

inline constexpr uint32_t kDirectBootAcpiTablesAddr = 0xE0000;
inline constexpr uint32_t kDirectBootAcpiTablesEnd = 0xF0000;
inline constexpr uint32_t kDirectBootRsdpAddr = 0xF0000;
inline constexpr uint32_t kDirectBootMpFloatingAddr = 0xF0020;
inline constexpr uint32_t kDirectBootMpConfigAddr = 0xF0030;
inline constexpr uint32_t kDirectBootMpConfigEnd = 0xF1000;

/// Whether the machine has a local APIC and an IOAPIC (MachineConfig::apic, --no-apic);
/// the MADT and the MP table follow.
[[nodiscard]] bool machine_has_apic(const MachineConfig& config);

/// The facts the tables state about the machine of `config`: its CPUs, APICs, the ACPI PM
/// block (at 0x600 on every boot path), PCI and the floppy controller on BIOS boots.
[[nodiscard]] PlatformTablesConfig platform_tables_config(const MachineConfig& config);

/// What a direct kernel boot of `config` puts into guest RAM and the e820 ranges that keep
/// it there: the ACPI tables unless --no-acpi, the MP tables if the machine has APICs.
struct DirectBootTables {
  std::vector<linux_boot::E820Range> holes;
  std::vector<FirmwareBlob> blobs;
};
[[nodiscard]] DirectBootTables direct_boot_tables(const MachineConfig& config);

}  // namespace vmm86
