// The ACPI tables of vmm86's PC (ACPI 1.0 layout, as QEMU's i440FX `pc` machine gives its
// guests): RSDP (revision 0) -> RSDT -> FADT (revision 1) -> FACS and DSDT, plus the MADT
// when the machine has APICs. Revision-0 RSDP with an RSDT rather than v2 with an XSDT:
// the tables lie below 4 GiB, so the XSDT's 64-bit pointers would add nothing, and the
// OSes of a P6 PC (Windows 98/2000, Linux 2.4) and QEMU's `pc` all use ACPI 1.0; for the
// same reason the FADT is revision 1 (116 bytes, which has no reset register: a reboot
// goes through the keyboard controller or 0xCF9, as on QEMU's `pc`).
//
// Two files, as QEMU names them for its loader: "etc/acpi/rsdp" (the RSDP alone, in the
// F segment where OSes scan for it) and "etc/acpi/tables" (everything else, FACS first
// for its 64-byte alignment). The DSDT's AML holds \_S5 (SLP_TYP 0: the PIIX4's soft-off
// SUS_TYP, which the PM model turns into a power-off), \_SB.PCI0 (PNP0A03) with its
// resources when there is PCI, and the ISA devices the machine has (RTC, keyboard
// controller, COM1/COM2, floppy controller), so that Linux's PNP layer finds them as it does
// on QEMU.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "devices/firmware/platform_tables.h"
#include "devices/firmware/table_linker.h"

namespace vmm86 {

namespace acpi {
inline constexpr std::string_view kRsdpFile = "etc/acpi/rsdp";
inline constexpr std::string_view kTablesFile = "etc/acpi/tables";
/// Header fields of every table vmm86 makes.
inline constexpr std::string_view kOemId = "VMM86 ";         // 6 bytes
inline constexpr std::string_view kOemTableId = "VMM86PC ";  // 8 bytes
inline constexpr uint32_t kOemRevision = 1;
inline constexpr std::string_view kCreatorId = "VM86";  // 4 bytes
inline constexpr uint32_t kCreatorRevision = 1;
inline constexpr size_t kHeaderSize = 36;
inline constexpr size_t kRsdpSize = 20;   ///< revision 0
inline constexpr size_t kFadtSize = 116;  ///< revision 1
inline constexpr size_t kFacsSize = 64;
inline constexpr size_t kFacsAlignment = 64;
/// FADT flags set: WBINVD works, C1 is supported, no sleep button (PWR_BUTTON clear: the
/// power button is the fixed-feature one of the PM1 block), the RTC can wake from S4.
inline constexpr uint32_t kFadtWbinvd = 1u << 0;
inline constexpr uint32_t kFadtProcC1 = 1u << 2;
inline constexpr uint32_t kFadtSleepButton = 1u << 5;
inline constexpr uint32_t kFadtRtcS4 = 1u << 7;
/// MADT flags: PCAT_COMPAT, the 8259 pair is there too.
inline constexpr uint32_t kMadtPcatCompat = 1u << 0;
/// MPS INTI flags of an interrupt source override (polarity bits 1:0, trigger 3:2).
inline constexpr uint16_t kIntiConforming = 0x0;
inline constexpr uint16_t kIntiActiveHighLevel = 0x1 | 0x3 << 2;
}  // namespace acpi

/// The tables for `config`, unplaced.
[[nodiscard]] LinkedTables build_acpi_tables(const PlatformTablesConfig& config);

/// The DSDT's AML body (after the table header), for tests and the DSDT itself.
[[nodiscard]] std::vector<uint8_t> build_dsdt_aml(const PlatformTablesConfig& config);

}  // namespace vmm86
