// The MP tables as an OS reads them (Intel MP specification 1.4, chapter 4): the floating
// pointer's checksum and fields, the configuration table's header, length, entry count and
// checksum, and every entry in the order the specification wants (processors, buses,
// IOAPICs, I/O interrupts, local interrupts).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/firmware/mp_table.h"

namespace vmm86 {
namespace {

using Bytes = std::vector<uint8_t>;

uint32_t le(const Bytes& b, size_t at, size_t size) {
  uint32_t v = 0;
  for (size_t i = 0; i < size; ++i) v |= uint32_t{b[at + i]} << (8 * i);
  return v;
}

uint8_t sum(const Bytes& b) {
  uint8_t s = 0;
  for (const uint8_t x : b) s = static_cast<uint8_t>(s + x);
  return s;
}

TEST(MpTable, FloatingPointerPointsAtTheConfigurationTable) {
  PlatformTablesConfig config;
  config.apic = true;
  const MpTables t = build_mp_tables(config, 0xF0040);
  ASSERT_EQ(t.floating.size(), mp::kFloatingSize);
  EXPECT_EQ(std::string(t.floating.begin(), t.floating.begin() + 4), "_MP_");
  EXPECT_EQ(le(t.floating, 4, 4), 0xF0040u);
  EXPECT_EQ(t.floating[8], 1) << "length in paragraphs";
  EXPECT_EQ(t.floating[9], 4) << "MP 1.4";
  EXPECT_EQ(sum(t.floating), 0);
  for (size_t i = 11; i < 16; ++i) EXPECT_EQ(t.floating[i], 0) << "feature byte " << i - 10;
}

TEST(MpTable, ConfigurationTableEntries) {
  PlatformTablesConfig config;
  config.apic = true;
  config.cpu_count = 2;
  config.cpu_signature = 0x06D8;
  config.cpu_features = 0x0383FBFF;
  const Bytes table = build_mp_tables(config, 0xF0040).config;
  ASSERT_GE(table.size(), mp::kHeaderSize);
  EXPECT_EQ(std::string(table.begin(), table.begin() + 4), "PCMP");
  EXPECT_EQ(le(table, 4, 2), table.size());
  EXPECT_EQ(table[6], 4);
  EXPECT_EQ(sum(table), 0);
  EXPECT_EQ(std::string(table.begin() + 8, table.begin() + 16), "VMM86   ");
  EXPECT_EQ(le(table, 36, 4), 0xFEE00000u);
  EXPECT_EQ(le(table, 40, 2), 0u) << "no extended entries";

  std::vector<Bytes> entries;
  for (size_t at = mp::kHeaderSize; at < table.size();) {
    const size_t size = table[at] == mp::kProcessor ? mp::kProcessorEntrySize : mp::kOtherEntrySize;
    ASSERT_LE(at + size, table.size());
    entries.emplace_back(table.begin() + static_cast<ptrdiff_t>(at), table.begin() + static_cast<ptrdiff_t>(at + size));
    at += size;
  }
  EXPECT_EQ(entries.size(), le(table, 34, 2));
  // 2 processors, ISA bus, IOAPIC, 15 ISA interrupts (not IRQ 2), ExtINT, NMI.
  ASSERT_EQ(entries.size(), 2u + 1 + 1 + 15 + 2);
  EXPECT_EQ(entries[0], (Bytes{0, 0, 0x14, 0x03, 0xD8, 0x06, 0, 0, 0xFF, 0xFB, 0x83, 0x03, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(entries[1][1], 1) << "APIC ID";
  EXPECT_EQ(entries[1][3], mp::kCpuEnabled) << "an application processor";
  EXPECT_EQ(entries[2], (Bytes{1, 0, 'I', 'S', 'A', ' ', ' ', ' '}));
  EXPECT_EQ(entries[3], (Bytes{2, 2, 0x11, 1, 0x00, 0x00, 0xC0, 0xFE}));
  EXPECT_EQ(entries[4], (Bytes{3, 0, 0, 0, 0, 0, 2, 2})) << "IRQ 0 -> INTIN 2";
  EXPECT_EQ(entries[5], (Bytes{3, 0, 0, 0, 0, 1, 2, 1})) << "IRQ 1 -> INTIN 1";
  EXPECT_EQ(entries[6], (Bytes{3, 0, 0, 0, 0, 3, 2, 3})) << "IRQ 2 is left out";
  EXPECT_EQ(entries[12], (Bytes{3, 0, 0x0D, 0, 0, 9, 2, 9})) << "the SCI: level, active high";
  EXPECT_EQ(entries[18], (Bytes{3, 0, 0, 0, 0, 15, 2, 15}));
  EXPECT_EQ(entries[19], (Bytes{4, 3, 0, 0, 0, 0, 0, 0})) << "ExtINT on the BSP's LINT0";
  EXPECT_EQ(entries[20], (Bytes{4, 1, 0, 0, 0, 0, 0xFF, 1})) << "NMI on every LINT1";
}

TEST(MpTable, PciBusComesFirstWhenPresent) {
  PlatformTablesConfig config;
  config.apic = true;
  config.pci = true;
  config.acpi = false;
  const Bytes table = build_mp_tables(config, 0xF0040).config;
  const size_t bus = mp::kHeaderSize + mp::kProcessorEntrySize;
  EXPECT_EQ(Bytes(table.begin() + bus, table.begin() + bus + 16),
            (Bytes{1, 0, 'P', 'C', 'I', ' ', ' ', ' ', 1, 1, 'I', 'S', 'A', ' ', ' ', ' '}));
  // Without ACPI there is no SCI: IRQ 9 conforms to the (ISA) bus. Entries: CPU, 2 buses,
  // IOAPIC, then IRQs 0, 1, 3..8, 9.
  const size_t irq9 = bus + 3 * mp::kOtherEntrySize + 8 * mp::kOtherEntrySize;
  EXPECT_EQ(Bytes(table.begin() + irq9, table.begin() + irq9 + 8), (Bytes{3, 0, 0, 0, 1, 9, 1, 9}));
}

}  // namespace
}  // namespace vmm86
