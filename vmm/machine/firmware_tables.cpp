#include "vmm/machine/firmware_tables.h"

#include <algorithm>

#include "common/check.h"
#include "devices/firmware/acpi_tables.h"
#include "devices/firmware/mp_table.h"
#include "devices/fixed_acpi_pm.h"
#include "vmm/machine/cpuid.h"

namespace vmm86 {

bool machine_has_apic(const MachineConfig& config) { return config.apic; }

PlatformTablesConfig platform_tables_config(const MachineConfig& config) {
  PlatformTablesConfig tables;
  tables.cpu_count = std::max(config.smp, 1u);
  tables.apic = machine_has_apic(config);
  tables.acpi = config.acpi;
  tables.pm_io_base = FixedAcpiPm::kPmIoBase;  // SeaBIOS's PMBA too, with the table loader
  const CpuidResult leaf1 = virtual_cpuid(1, 0, 0, tables.apic);
  tables.cpu_signature = leaf1.eax;
  tables.cpu_features = leaf1.edx;
  const bool bios = config.kernel_path.empty();
  tables.pci = bios;     // the PCI chipset comes with the BIOS boot
  tables.floppy = bios;  // so does the floppy controller
  return tables;
}

DirectBootTables direct_boot_tables(const MachineConfig& config) {
  using linux_boot::E820Type;
  const PlatformTablesConfig platform = platform_tables_config(config);
  DirectBootTables out;
  if (config.acpi) {
    const LinkedTables tables = build_acpi_tables(platform);
    const size_t rsdp = tables.find(acpi::kRsdpFile);
    const size_t blob = tables.find(acpi::kTablesFile);
    std::vector<uint32_t> addresses(tables.files.size());
    addresses[rsdp] = kDirectBootRsdpAddr;
    addresses[blob] = kDirectBootAcpiTablesAddr;
    std::vector<std::vector<uint8_t>> linked = tables.link(addresses);
    VMM86_CHECK(linked[blob].size() <= kDirectBootAcpiTablesEnd - kDirectBootAcpiTablesAddr);
    VMM86_CHECK(kDirectBootRsdpAddr + linked[rsdp].size() <= kDirectBootMpFloatingAddr);
    out.holes.push_back(
        {kDirectBootAcpiTablesAddr, kDirectBootAcpiTablesEnd - kDirectBootAcpiTablesAddr, E820Type::Acpi});
    out.blobs.push_back({GuestPhys{kDirectBootRsdpAddr}, std::move(linked[rsdp])});
    out.blobs.push_back({GuestPhys{kDirectBootAcpiTablesAddr}, std::move(linked[blob])});
  }
  if (platform.apic) {
    MpTables mp = build_mp_tables(platform, kDirectBootMpConfigAddr);
    VMM86_CHECK(kDirectBootMpConfigAddr + mp.config.size() <= kDirectBootMpConfigEnd);
    out.blobs.push_back({GuestPhys{kDirectBootMpFloatingAddr}, std::move(mp.floating)});
    out.blobs.push_back({GuestPhys{kDirectBootMpConfigAddr}, std::move(mp.config)});
  }
  // 0xF0000-0xFFFFF is reserved in every PC memory map (linux_boot::build_e820_map).
  return out;
}

}  // namespace vmm86
