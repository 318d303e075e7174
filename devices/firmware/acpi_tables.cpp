#include "devices/firmware/acpi_tables.h"

#include <cstring>
#include <optional>
#include <string>

#include "devices/firmware/aml.h"

namespace vmm86 {
namespace {

using aml::Bytes;

constexpr size_t kRsdpChecksumAt = 8;
constexpr size_t kRsdpRsdtAt = 16;
constexpr size_t kHeaderLengthAt = 4;
constexpr size_t kHeaderChecksumAt = 9;
constexpr uint8_t kTableRevision = 1;
// FADT (revision 1) field offsets.
constexpr size_t kFadtFacsAt = 36;
constexpr size_t kFadtDsdtAt = 40;
constexpr uint8_t kIntModelDualPic = 0;
constexpr uint8_t kIntModelApic = 1;
constexpr uint8_t kPm1EventLength = 4;
constexpr uint8_t kPm1ControlLength = 2;
constexpr uint8_t kPmTimerLength = 4;
constexpr uint8_t kGpe0Length = 4;
constexpr uint16_t kPmControlOffset = 4;
constexpr uint16_t kPmTimerOffset = 8;
constexpr uint16_t kC2Unsupported = 0x0FFF;  // P_LVL2_LAT > 100: no C2
constexpr uint16_t kC3Unsupported = 0x0FFF;  // P_LVL3_LAT > 1000: no C3
// MADT entry types (ACPI 6.5 §5.2.12).
enum MadtEntry : uint8_t { kLocalApic = 0, kIoApic = 1, kSourceOverride = 2, kLocalApicNmi = 4 };
constexpr uint32_t kLocalApicEnabled = 1;
constexpr uint8_t kAllProcessors = 0xFF;
constexpr uint8_t kLint1 = 1;
constexpr uint8_t kIsaTimerIrq = 0;
constexpr uint32_t kIoApicTimerPin = 2;
// The PIIX4's SUS_TYP for soft off, which \_S5 hands to the OS.
constexpr uint32_t kSoftOffSleepType = 0;

/// A table header with length and checksum left 0 (finish_table fills the length).
Bytes table_header(std::string_view signature) {
  Bytes out;
  append_text(out, signature);
  append_le(out, 0, 4);  // length
  out.push_back(kTableRevision);
  out.push_back(0);  // checksum
  append_text(out, acpi::kOemId);
  append_text(out, acpi::kOemTableId);
  append_le(out, acpi::kOemRevision, 4);
  append_text(out, acpi::kCreatorId);
  append_le(out, acpi::kCreatorRevision, 4);
  return out;
}

/// Appends a finished table to the tables file and asks for its checksum; returns its offset.
uint32_t add_table(LinkedTables& tables, size_t file, Bytes table) {
  const auto length = static_cast<uint32_t>(table.size());
  for (size_t i = 0; i < 4; ++i) table[kHeaderLengthAt + i] = static_cast<uint8_t>(length >> (8 * i));
  std::vector<uint8_t>& bytes = tables.files[file].bytes;
  const auto offset = static_cast<uint32_t>(bytes.size());
  bytes.insert(bytes.end(), table.begin(), table.end());
  tables.checksums.push_back({file, offset + static_cast<uint32_t>(kHeaderChecksumAt), offset, length});
  return offset;
}

Bytes facs() {
  Bytes out;
  append_text(out, "FACS");
  append_le(out, acpi::kFacsSize, 4);
  out.resize(acpi::kFacsSize, 0);  // hardware signature, waking vector, global lock, flags: 0
  return out;
}

Bytes fadt(const PlatformTablesConfig& config) {
  Bytes out = table_header("FACP");
  append_le(out, 0, 4);  // FIRMWARE_CTRL: the FACS (pointer)
  append_le(out, 0, 4);  // DSDT (pointer)
  out.push_back(config.apic ? kIntModelApic : kIntModelDualPic);
  out.push_back(0);  // reserved in revision 1
  append_le(out, config.sci_irq, 2);
  append_le(out, config.smi_command_port, 4);
  out.push_back(config.acpi_enable);
  out.push_back(config.acpi_disable);
  out.push_back(0);                                         // S4BIOS_REQ
  out.push_back(0);                                         // reserved
  append_le(out, config.pm_io_base, 4);                     // PM1a_EVT_BLK
  append_le(out, 0, 4);                                     // PM1b_EVT_BLK
  append_le(out, config.pm_io_base + kPmControlOffset, 4);  // PM1a_CNT_BLK
  append_le(out, 0, 4);                                     // PM1b_CNT_BLK
  append_le(out, 0, 4);                                     // PM2_CNT_BLK
  append_le(out, config.pm_io_base + kPmTimerOffset, 4);    // PM_TMR_BLK
  append_le(out, config.gpe0_base, 4);                      // GPE0_BLK
  append_le(out, 0, 4);                                     // GPE1_BLK
  for (const uint8_t length : {kPm1EventLength, kPm1ControlLength, uint8_t{0}, kPmTimerLength, kGpe0Length}) {
    out.push_back(length);  // PM1_EVT_LEN, PM1_CNT_LEN, PM2_CNT_LEN, PM_TMR_LEN, GPE0_BLK_LEN
  }
  out.push_back(0);  // GPE1_BLK_LEN
  out.push_back(0);  // GPE1_BASE
  out.push_back(0);  // reserved
  append_le(out, kC2Unsupported, 2);
  append_le(out, kC3Unsupported, 2);
  append_le(out, 0, 2);  // FLUSH_SIZE
  append_le(out, 0, 2);  // FLUSH_STRIDE
  out.push_back(0);      // DUTY_OFFSET
  out.push_back(0);      // DUTY_WIDTH
  out.push_back(0);      // DAY_ALRM
  out.push_back(0);      // MON_ALRM
  out.push_back(config.rtc_century_index);
  out.resize(out.size() + 3, 0);  // reserved
  append_le(out, acpi::kFadtWbinvd | acpi::kFadtProcC1 | acpi::kFadtSleepButton | acpi::kFadtRtcS4, 4);
  return out;
}

Bytes madt(const PlatformTablesConfig& config) {
  Bytes out = table_header("APIC");
  append_le(out, config.local_apic_address, 4);
  append_le(out, acpi::kMadtPcatCompat, 4);
  for (unsigned cpu = 0; cpu < config.cpu_count; ++cpu) {
    out.insert(out.end(), {kLocalApic, 8, static_cast<uint8_t>(cpu), static_cast<uint8_t>(cpu)});
    append_le(out, kLocalApicEnabled, 4);
  }
  out.insert(out.end(), {kIoApic, 12, config.io_apic_id(), 0});
  append_le(out, config.io_apic_address, 4);
  append_le(out, 0, 4);  // GSI base
  auto source_override = [&](uint8_t irq, uint32_t gsi, uint16_t flags) {
    out.insert(out.end(), {kSourceOverride, 10, 0, irq});  // bus 0: ISA
    append_le(out, gsi, 4);
    append_le(out, flags, 2);
  };
  source_override(kIsaTimerIrq, kIoApicTimerPin, acpi::kIntiConforming);
  source_override(config.sci_irq, config.sci_irq, acpi::kIntiActiveHighLevel);
  out.insert(out.end(), {kLocalApicNmi, 6, kAllProcessors});
  append_le(out, acpi::kIntiConforming, 2);
  out.push_back(kLint1);
  return out;
}

/// Device(name) { _HID, [_UID], _CRS }.
Bytes isa_device(std::string_view name, std::string_view hid, std::optional<uint32_t> uid,
                 const aml::ResourceTemplate& resources) {
  Bytes body = aml::name("_HID", aml::eisa_id(hid));
  if (uid) aml::append(body, aml::name("_UID", aml::integer(*uid)));
  aml::append(body, aml::name("_CRS", resources.finish()));
  return aml::device(name, body);
}

Bytes isa_devices(const PlatformTablesConfig& config) {
  Bytes out;
  aml::append(out, isa_device("RTC", "PNP0B00", std::nullopt, aml::ResourceTemplate().io(0x70, 0x70, 1, 2).irq(8)));
  aml::append(out, isa_device("KBD", "PNP0303", std::nullopt,
                              aml::ResourceTemplate().io(0x60, 0x60, 1, 1).io(0x64, 0x64, 1, 1).irq(1)));
  aml::append(out, isa_device("COM1", "PNP0501", 1, aml::ResourceTemplate().io(0x3F8, 0x3F8, 0, 8).irq(4)));
  if (config.com2) {
    aml::append(out, isa_device("COM2", "PNP0501", 2, aml::ResourceTemplate().io(0x2F8, 0x2F8, 0, 8).irq(3)));
  }
  if (config.floppy) {
    aml::append(out, isa_device("FDC0", "PNP0700", std::nullopt,
                                aml::ResourceTemplate().io(0x3F2, 0x3F2, 0, 4).io(0x3F7, 0x3F7, 0, 1).irq(6).dma(2)));
  }
  return out;
}

Bytes pci_root(const PlatformTablesConfig& config) {
  Bytes body = aml::name("_HID", aml::eisa_id("PNP0A03"));
  aml::append(body, aml::name("_ADR", aml::integer(0)));
  aml::append(body, aml::name("_UID", aml::integer(0)));
  aml::ResourceTemplate crs;
  crs.word_bus_number(0, 0xFF)
      .io(0xCF8, 0xCF8, 1, 8)  // configuration mechanism #1, the bridge's own
      .word_io(0x0000, 0x0CF7)
      .word_io(0x0D00, 0xFFFF)
      .dword_memory(0x000A0000, 0x000BFFFF)  // VGA memory
      .dword_memory(config.pci_mmio_start, config.pci_mmio_end);
  aml::append(body, aml::name("_CRS", crs.finish()));
  // The PIIX3 ISA bridge, 00:01.0, parents the legacy devices.
  Bytes isa = aml::name("_ADR", aml::integer(0x00010000));
  aml::append(isa, isa_devices(config));
  aml::append(body, aml::device("ISA", isa));
  return aml::device("PCI0", body);
}

}  // namespace

std::vector<uint8_t> build_dsdt_aml(const PlatformTablesConfig& config) {
  const std::array<Bytes, 4> s5{aml::integer(kSoftOffSleepType), aml::integer(kSoftOffSleepType), aml::integer(0),
                                aml::integer(0)};
  Bytes out = aml::name("\\_S5", aml::package(s5));
  aml::append(out, aml::scope("\\_SB", config.pci ? pci_root(config) : isa_devices(config)));
  return out;
}

LinkedTables build_acpi_tables(const PlatformTablesConfig& config) {
  LinkedTables tables;
  tables.files.push_back({std::string(acpi::kRsdpFile), {}, 16, TableZone::FSeg});
  tables.files.push_back({std::string(acpi::kTablesFile), {}, acpi::kFacsAlignment, TableZone::High});
  constexpr size_t kRsdp = 0, kTables = 1;

  std::vector<uint8_t>& blob = tables.files[kTables].bytes;
  const Bytes facs_table = facs();
  blob.insert(blob.end(), facs_table.begin(), facs_table.end());
  constexpr uint32_t kFacsOffset = 0;

  Bytes dsdt = table_header("DSDT");
  aml::append(dsdt, build_dsdt_aml(config));
  const uint32_t dsdt_offset = add_table(tables, kTables, std::move(dsdt));

  Bytes fadt_table = fadt(config);
  const auto fadt_offset = static_cast<uint32_t>(blob.size());
  std::memcpy(fadt_table.data() + kFadtFacsAt, &kFacsOffset, 4);
  std::memcpy(fadt_table.data() + kFadtDsdtAt, &dsdt_offset, 4);
  tables.pointers.push_back({kTables, fadt_offset + static_cast<uint32_t>(kFadtFacsAt), 4, kTables});
  tables.pointers.push_back({kTables, fadt_offset + static_cast<uint32_t>(kFadtDsdtAt), 4, kTables});
  (void)add_table(tables, kTables, std::move(fadt_table));

  std::vector<uint32_t> rsdt_entries{fadt_offset};
  if (config.apic) rsdt_entries.push_back(add_table(tables, kTables, madt(config)));

  Bytes rsdt = table_header("RSDT");
  const auto rsdt_offset = static_cast<uint32_t>(blob.size());
  for (const uint32_t entry : rsdt_entries) {
    tables.pointers.push_back({kTables, rsdt_offset + static_cast<uint32_t>(rsdt.size()), 4, kTables});
    append_le(rsdt, entry, 4);
  }
  (void)add_table(tables, kTables, std::move(rsdt));

  Bytes rsdp;
  append_text(rsdp, "RSD PTR ");
  rsdp.push_back(0);  // checksum
  append_text(rsdp, acpi::kOemId);
  rsdp.push_back(0);  // revision 0: ACPI 1.0
  append_le(rsdp, rsdt_offset, 4);
  tables.files[kRsdp].bytes = std::move(rsdp);
  tables.pointers.push_back({kRsdp, static_cast<uint32_t>(kRsdpRsdtAt), 4, kTables});
  tables.checksums.push_back(
      {kRsdp, static_cast<uint32_t>(kRsdpChecksumAt), 0, static_cast<uint32_t>(acpi::kRsdpSize)});
  return tables;
}

}  // namespace vmm86
