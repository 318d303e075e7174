#include "devices/firmware/fw_cfg_pc.h"

namespace vmm86 {
namespace {

constexpr uint64_t k4GiB = uint64_t{1} << 32;

}  // namespace

std::vector<E820Entry> pc_e820_for_ram(uint64_t ram_bytes) {
  const uint64_t low = ram_bytes >= kPcLowRamSplitAt ? kPcLowRamWhenSplit : ram_bytes;
  std::vector<E820Entry> entries;
  if (low > 0) entries.push_back({0, low, kE820Ram});
  if (ram_bytes > low) entries.push_back({k4GiB, ram_bytes - low, kE820Ram});
  return entries;
}

std::vector<uint8_t> e820_file_bytes(const std::vector<E820Entry>& entries) {
  std::vector<uint8_t> bytes;
  for (const E820Entry& entry : entries) {
    append_le(bytes, entry.address, 8);
    append_le(bytes, entry.length, 8);
    append_le(bytes, entry.type, 4);
  }
  return bytes;
}

Status fill_pc_fw_cfg(FwCfg& fw_cfg, const FwCfgMachineInfo& info) {
  // QEMU sets it; SeaBIOS sizes memory from etc/e820 instead, other firmware reads this.
  VMM86_TRY(fw_cfg.add_u64(FwCfg::kRamSize, info.ram_bytes));
  // SeaBIOS counts the CPUs present as the larger of this and CMOS 0x5F + 1.
  VMM86_TRY(fw_cfg.add_u16(FwCfg::kNbCpus, info.cpu_count));
  // "etc/max-cpus": how many CPU entries SeaBIOS puts in the MP table and ACPI.
  VMM86_TRY(fw_cfg.add_u16(FwCfg::kMaxCpus, info.cpu_count));
  // No NUMA nodes: node count 0 and one zero node number per CPU, QEMU's layout.
  VMM86_TRY(fw_cfg.add_bytes(FwCfg::kNuma, std::vector<uint8_t>(8 * (size_t{1} + info.cpu_count), 0)));
  // "etc/show-boot-menu": 0 skips the prompt and its wait.
  VMM86_TRY(fw_cfg.add_u16(FwCfg::kBootMenu, info.show_boot_menu ? 1 : 0));
  // SeaBIOS sizes RAM from this file (qemu_early_e820) and passes the entries on in int 15h.
  const std::vector<E820Entry> e820 = info.e820.empty() ? pc_e820_for_ram(info.ram_bytes) : info.e820;
  VMM86_TRY(fw_cfg.add_file("etc/e820", e820_file_bytes(e820)));
  // SeaBIOS reads it NUL-terminated (QEMU sends the NUL) and tries the paths in order.
  if (!info.boot_order.empty()) {
    std::vector<uint8_t> bytes(info.boot_order.begin(), info.boot_order.end());
    bytes.push_back(0);
    VMM86_TRY(fw_cfg.add_file("bootorder", std::move(bytes)));
  }
  // SeaBIOS copies its screen output there (the primary display when there is no VGA
  // BIOS). A number file for romfile_loadint: the size (1, 2, 4 or 8) is the width.
  if (info.serial_console_port != 0) {
    std::vector<uint8_t> port;
    append_le(port, info.serial_console_port, 2);
    VMM86_TRY(fw_cfg.add_file("etc/sercon-port", std::move(port)));
  }
  // With an IOAPIC: SeaBIOS's MADT and MP table then say that ISA IRQ 0 is GSI 2 (an
  // interrupt source override), as QEMU's machine asks; without it Linux finds no timer on
  // the IOAPIC ("8254 timer not connected to IO-APIC") and falls back to ExtINT.
  if (info.irq0_to_ioapic_pin2) {
    std::vector<uint8_t> yes;
    append_le(yes, 1, 4);
    VMM86_TRY(fw_cfg.add_file("etc/irq0-override", std::move(yes)));
  }
  // le32 ms, QEMU's width (-boot reboot-timeout); all ones: never retry.
  std::vector<uint8_t> wait;
  append_le(wait, info.boot_fail_wait_ms, 4);
  VMM86_TRY(fw_cfg.add_file("etc/boot-fail-wait", std::move(wait)));
  return ok_status();
}

Status add_acpi_tables(FwCfg& fw_cfg, const LinkedTables& tables) {
  auto script = tables.loader_script();
  if (!script) return std::move(script).take_error();
  for (const TableFile& file : tables.files) VMM86_TRY(fw_cfg.add_file(file.name, file.bytes));
  // SeaBIOS (qemu_platform_setup) runs the script after PCI setup, then finds the RSDP
  // in the F segment; the script's presence alone makes qemu_cfg_init move PMBA to 0x600.
  return fw_cfg.add_file(table_loader::kScriptFile, std::move(*script));
}

}  // namespace vmm86
