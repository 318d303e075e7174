#include "devices/firmware/mp_table.h"

#include "common/check.h"
#include "devices/firmware/table_linker.h"

namespace vmm86 {
namespace {

constexpr size_t kConfigChecksumAt = 7;
constexpr size_t kFloatingChecksumAt = 10;
constexpr size_t kLengthAt = 4;         // base table length, 16 bits
constexpr size_t kEntryCountAt = 34;    // 16 bits
constexpr uint8_t kFloatingLength = 1;  // in 16-byte paragraphs
constexpr uint8_t kIsaTimerIrq = 0;
constexpr uint8_t kIoApicTimerPin = 2;
constexpr uint8_t kCascadeIrq = 2;
constexpr unsigned kIsaIrqs = 16;
constexpr uint16_t kConforming = 0;

void set_le16(std::vector<uint8_t>& out, size_t at, uint16_t value) {
  out[at] = static_cast<uint8_t>(value);
  out[at + 1] = static_cast<uint8_t>(value >> 8);
}

}  // namespace

MpTables build_mp_tables(const PlatformTablesConfig& config, uint32_t config_address) {
  VMM86_CHECK(config.apic);
  std::vector<uint8_t> table;
  append_text(table, "PCMP");
  append_le(table, 0, 2);  // base table length
  table.push_back(mp::kSpecRevision);
  table.push_back(0);  // checksum
  append_text(table, mp::kOemId);
  append_text(table, mp::kProductId);
  append_le(table, 0, 4);  // OEM table pointer
  append_le(table, 0, 2);  // OEM table size
  append_le(table, 0, 2);  // entry count
  append_le(table, config.local_apic_address, 4);
  append_le(table, 0, 2);  // extended table length
  table.push_back(0);      // extended table checksum
  table.push_back(0);      // reserved
  uint16_t entries = 0;

  for (unsigned cpu = 0; cpu < config.cpu_count; ++cpu) {
    table.insert(table.end(), {mp::kProcessor, static_cast<uint8_t>(cpu), config.local_apic_version,
                               static_cast<uint8_t>(mp::kCpuEnabled | (cpu == 0 ? mp::kCpuBootstrap : 0))});
    append_le(table, config.cpu_signature, 4);
    append_le(table, config.cpu_features, 4);
    append_le(table, 0, 8);  // reserved
    ++entries;
  }
  uint8_t bus_id = 0;
  if (config.pci) {
    table.insert(table.end(), {mp::kBus, bus_id++});
    append_text(table, "PCI   ");
    ++entries;
  }
  const uint8_t isa_bus = bus_id;
  table.insert(table.end(), {mp::kBus, isa_bus});
  append_text(table, "ISA   ");
  ++entries;
  const uint8_t io_apic = config.io_apic_id();
  table.insert(table.end(), {mp::kIoApic, io_apic, config.io_apic_version, 1 /* usable */});
  append_le(table, config.io_apic_address, 4);
  ++entries;

  auto interrupt = [&](uint8_t type, uint8_t kind, uint16_t flags, uint8_t source_irq, uint8_t apic, uint8_t pin) {
    table.insert(table.end(), {type, kind});
    append_le(table, flags, 2);
    table.insert(table.end(), {isa_bus, source_irq, apic, pin});
    ++entries;
  };
  for (unsigned irq = 0; irq < kIsaIrqs; ++irq) {
    if (irq == kCascadeIrq) continue;
    const bool sci = config.acpi && irq == config.sci_irq;
    const auto pin = static_cast<uint8_t>(irq == kIsaTimerIrq ? kIoApicTimerPin : irq);
    interrupt(mp::kIoInterrupt, mp::kInt, sci ? mp::kActiveHighLevel : kConforming, static_cast<uint8_t>(irq), io_apic,
              pin);
  }
  interrupt(mp::kLocalInterrupt, mp::kExtInt, kConforming, 0, 0 /* the bootstrap CPU */, 0 /* LINT0 */);
  interrupt(mp::kLocalInterrupt, mp::kNmi, kConforming, 0, mp::kAllLocalApics, 1 /* LINT1 */);

  set_le16(table, kLengthAt, static_cast<uint16_t>(table.size()));
  set_le16(table, kEntryCountAt, entries);
  table[kConfigChecksumAt] = static_cast<uint8_t>(-byte_sum(table));

  std::vector<uint8_t> floating;
  append_text(floating, "_MP_");
  append_le(floating, config_address, 4);
  floating.push_back(kFloatingLength);
  floating.push_back(mp::kSpecRevision);
  floating.push_back(0);      // checksum
  append_le(floating, 0, 5);  // feature bytes: a configuration table, no IMCR (virtual wire)
  floating[kFloatingChecksumAt] = static_cast<uint8_t>(-byte_sum(floating));
  return {std::move(floating), std::move(table)};
}

}  // namespace vmm86
