// The fw_cfg items an i440FX PC gives SeaBIOS, filled from plain machine facts. What each
// item does in SeaBIOS (src/fw/paravirt.c, boot.c, sercon.c) is noted where it is added.
// add_acpi_tables() adds the machine's ACPI tables as QEMU hands them over (etc/acpi/rsdp,
// etc/acpi/tables and the etc/table-loader that places them; SeaBIOS then makes none of
// its own and moves the PIIX4 PM block to 0x600, where the FADT says it is).
// Left out: etc/smbios/* (SeaBIOS then builds its own SMBIOS tables), the UUID (reads as
// zeros), and direct Linux boot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "devices/firmware/fw_cfg.h"
#include "devices/firmware/table_linker.h"

namespace vmm86 {

/// One "etc/e820" entry; on the wire {le64 address, le64 length, le32 type}, 20 bytes.
struct E820Entry {
  uint64_t address = 0;
  uint64_t length = 0;
  uint32_t type = 0;
};

/// E820 types (ACPI); SeaBIOS takes only RAM and reserved from fw_cfg.
enum E820Type : uint32_t {
  kE820Ram = 1,
  kE820Reserved = 2,
};

struct FwCfgMachineInfo {
  uint64_t ram_bytes = 0;
  uint16_t cpu_count = 1;
  /// Empty: pc_e820_for_ram(ram_bytes).
  std::vector<E820Entry> e820;
  /// Device paths (OpenFirmware style), one a line; empty leaves "bootorder" out.
  std::string boot_order;
  /// Where SeaBIOS mirrors its screen output (etc/sercon-port); 0 leaves it on the screen.
  uint16_t serial_console_port = 0x3F8;
  /// ms SeaBIOS waits after "No bootable device" before it resets the machine; the
  /// default (all ones) waits forever, as QEMU's does.
  uint32_t boot_fail_wait_ms = 0xFFFFFFFF;
  /// SeaBIOS's "Press ESC for boot menu" prompt and its 2.5 s wait.
  bool show_boot_menu = false;
  /// The machine wires ISA IRQ 0 to IOAPIC pin 2 (etc/irq0-override).
  bool irq0_to_ioapic_pin2 = false;
};

/// QEMU's i440FX RAM split: up to 3.5 GiB all of it sits at 0; more than that puts 3 GiB
/// at 0 and the rest at 4 GiB, leaving the space below 4 GiB to PCI.
constexpr uint64_t kPcLowRamSplitAt = 0xE0000000;
constexpr uint64_t kPcLowRamWhenSplit = 0xC0000000;

/// QEMU's e820 table for `ram_bytes` of RAM (one or two RAM entries).
[[nodiscard]] std::vector<E820Entry> pc_e820_for_ram(uint64_t ram_bytes);
/// The bytes of "etc/e820" for `entries`.
[[nodiscard]] std::vector<uint8_t> e820_file_bytes(const std::vector<E820Entry>& entries);
/// Adds the PC's items to `fw_cfg`; fails if one of them is there already.
Status fill_pc_fw_cfg(FwCfg& fw_cfg, const FwCfgMachineInfo& info);
/// Adds every file of `tables` and the "etc/table-loader" script that links them.
Status add_acpi_tables(FwCfg& fw_cfg, const LinkedTables& tables);

}  // namespace vmm86
