// The ACPI tables read back the way an OS reads them: from the RSDP through the RSDT to
// each table, every field at its ACPI 1.0 offset, checksums over each table's length, and
// the DSDT's \_S5 decoded from the AML bytes. The loader script is run the way SeaBIOS's
// romfile_loader.c runs it, and must give the bytes that link() gives.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "devices/firmware/acpi_tables.h"
#include "devices/firmware/aml.h"

namespace vmm86 {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kRsdpAt = 0xF0000;
constexpr uint32_t kTablesAt = 0xE0000;

uint32_t le(const Bytes& b, size_t at, size_t size) {
  uint32_t v = 0;
  for (size_t i = 0; i < size; ++i) v |= uint32_t{b[at + i]} << (8 * i);
  return v;
}

std::string text(const Bytes& b, size_t at, size_t size) { return {b.begin() + at, b.begin() + at + size}; }

uint8_t sum(const Bytes& b, size_t at, size_t size) {
  uint8_t s = 0;
  for (size_t i = 0; i < size; ++i) s = static_cast<uint8_t>(s + b[at + i]);
  return s;
}

/// Guest memory as the two files make it, read by physical address.
class PlacedTables {
 public:
  explicit PlacedTables(const PlatformTablesConfig& config) {
    const LinkedTables tables = build_acpi_tables(config);
    const size_t rsdp = tables.find(acpi::kRsdpFile), blob = tables.find(acpi::kTablesFile);
    std::vector<uint32_t> addresses(tables.files.size());
    addresses[rsdp] = kRsdpAt;
    addresses[blob] = kTablesAt;
    const auto linked = tables.link(addresses);
    rsdp_ = linked[rsdp];
    blob_ = linked[blob];
  }
  const Bytes& rsdp() const { return rsdp_; }
  /// The table at guest-physical `address`, its header's length long.
  Bytes table_at(uint32_t address) const {
    EXPECT_GE(address, kTablesAt);
    const size_t at = address - kTablesAt;
    EXPECT_LE(at + 8, blob_.size());
    const size_t length = le(blob_, at + 4, 4);  // the FACS too keeps its length there
    EXPECT_LE(at + length, blob_.size());
    return {blob_.begin() + static_cast<ptrdiff_t>(at), blob_.begin() + static_cast<ptrdiff_t>(at + length)};
  }
  /// RSDT entries by signature.
  std::map<std::string, uint32_t> rsdt_entries() const {
    const Bytes rsdt = table_at(le(rsdp_, 16, 4));
    std::map<std::string, uint32_t> out;
    for (size_t at = acpi::kHeaderSize; at + 4 <= rsdt.size(); at += 4) {
      const uint32_t address = le(rsdt, at, 4);
      out[text(table_at(address), 0, 4)] = address;
    }
    return out;
  }

 private:
  Bytes rsdp_;
  Bytes blob_;
};

void expect_header(const Bytes& table, std::string_view signature, uint8_t revision) {
  ASSERT_GE(table.size(), acpi::kHeaderSize);
  EXPECT_EQ(text(table, 0, 4), signature);
  EXPECT_EQ(le(table, 4, 4), table.size());
  EXPECT_EQ(table[8], revision);
  EXPECT_EQ(sum(table, 0, table.size()), 0) << signature << " checksum";
  EXPECT_EQ(text(table, 10, 6), "VMM86 ");
  EXPECT_EQ(text(table, 16, 8), "VMM86PC ");
  EXPECT_EQ(le(table, 24, 4), 1u);
  EXPECT_EQ(text(table, 28, 4), "VM86");
}

TEST(AcpiTables, RsdpIsRevisionZeroWithChecksumAndPointsAtTheRsdt) {
  const PlacedTables t{PlatformTablesConfig{}};
  const Bytes& rsdp = t.rsdp();
  ASSERT_EQ(rsdp.size(), acpi::kRsdpSize);
  EXPECT_EQ(text(rsdp, 0, 8), "RSD PTR ");
  EXPECT_EQ(sum(rsdp, 0, 20), 0);
  EXPECT_EQ(text(rsdp, 9, 6), "VMM86 ");
  EXPECT_EQ(rsdp[15], 0) << "ACPI 1.0 RSDP";
  expect_header(t.table_at(le(rsdp, 16, 4)), "RSDT", 1);
}

TEST(AcpiTables, WithoutApicsTheRsdtListsOnlyTheFadt) {
  const PlacedTables t{PlatformTablesConfig{}};
  const auto entries = t.rsdt_entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries.contains("FACP"));
}

TEST(AcpiTables, FadtDescribesThePiix4PmBlock) {
  PlatformTablesConfig config;
  const PlacedTables t{config};
  const Bytes fadt = t.table_at(t.rsdt_entries().at("FACP"));
  ASSERT_EQ(fadt.size(), acpi::kFadtSize);
  expect_header(fadt, "FACP", 1);
  const uint32_t facs_at = le(fadt, 36, 4);
  EXPECT_EQ(facs_at % acpi::kFacsAlignment, 0u);
  const Bytes facs = t.table_at(facs_at);
  EXPECT_EQ(text(facs, 0, 4), "FACS");
  EXPECT_EQ(facs.size(), acpi::kFacsSize);
  expect_header(t.table_at(le(fadt, 40, 4)), "DSDT", 1);
  EXPECT_EQ(fadt[44], 0) << "INT_MODEL: dual 8259 without APICs";
  EXPECT_EQ(le(fadt, 46, 2), 9u) << "SCI_INT";
  EXPECT_EQ(le(fadt, 48, 4), 0xB2u) << "SMI_CMD";
  EXPECT_EQ(fadt[52], 0xF1) << "ACPI_ENABLE";
  EXPECT_EQ(fadt[53], 0xF0) << "ACPI_DISABLE";
  EXPECT_EQ(le(fadt, 56, 4), 0x600u) << "PM1a_EVT_BLK";
  EXPECT_EQ(le(fadt, 60, 4), 0u) << "PM1b_EVT_BLK";
  EXPECT_EQ(le(fadt, 64, 4), 0x604u) << "PM1a_CNT_BLK";
  EXPECT_EQ(le(fadt, 68, 4), 0u);
  EXPECT_EQ(le(fadt, 72, 4), 0u) << "PM2_CNT_BLK";
  EXPECT_EQ(le(fadt, 76, 4), 0x608u) << "PM_TMR_BLK";
  EXPECT_EQ(le(fadt, 80, 4), 0xAFE0u) << "GPE0_BLK";
  EXPECT_EQ(le(fadt, 84, 4), 0u) << "GPE1_BLK";
  EXPECT_EQ(fadt[88], 4) << "PM1_EVT_LEN";
  EXPECT_EQ(fadt[89], 2) << "PM1_CNT_LEN";
  EXPECT_EQ(fadt[90], 0) << "PM2_CNT_LEN";
  EXPECT_EQ(fadt[91], 4) << "PM_TMR_LEN";
  EXPECT_EQ(fadt[92], 4) << "GPE0_BLK_LEN";
  EXPECT_EQ(fadt[93], 0) << "GPE1_BLK_LEN";
  EXPECT_GT(le(fadt, 96, 2), 100u) << "no C2";
  EXPECT_GT(le(fadt, 98, 2), 1000u) << "no C3";
  EXPECT_EQ(fadt[108], 0x32) << "CENTURY";
  EXPECT_EQ(le(fadt, 112, 4), acpi::kFadtWbinvd | acpi::kFadtProcC1 | acpi::kFadtSleepButton | acpi::kFadtRtcS4);
  EXPECT_EQ(le(fadt, 112, 4) & (1u << 8), 0u) << "TMR_VAL_EXT clear: the PIIX4 timer has 24 bits";
}

TEST(AcpiTables, MadtListsEveryCpuTheIoApicAndTheOverridesWhenApicsExist) {
  PlatformTablesConfig config;
  config.apic = true;
  config.cpu_count = 2;
  const PlacedTables t{config};
  const auto entries = t.rsdt_entries();
  ASSERT_TRUE(entries.contains("APIC"));
  EXPECT_EQ(t.table_at(entries.at("FACP"))[44], 1) << "INT_MODEL: APIC";
  const Bytes madt = t.table_at(entries.at("APIC"));
  expect_header(madt, "APIC", 1);
  EXPECT_EQ(le(madt, 36, 4), 0xFEE00000u);
  EXPECT_EQ(le(madt, 40, 4), acpi::kMadtPcatCompat);
  std::vector<std::pair<uint8_t, Bytes>> items;
  for (size_t at = 44; at < madt.size(); at += madt[at + 1]) {
    ASSERT_GE(madt[at + 1], 2);
    items.emplace_back(madt[at], Bytes(madt.begin() + static_cast<ptrdiff_t>(at),
                                       madt.begin() + static_cast<ptrdiff_t>(at + madt[at + 1])));
  }
  ASSERT_EQ(items.size(), 6u);
  for (uint8_t cpu = 0; cpu < 2; ++cpu) {
    EXPECT_EQ(items[cpu].second, (Bytes{0, 8, cpu, cpu, 1, 0, 0, 0})) << "processor local APIC " << int{cpu};
  }
  EXPECT_EQ(items[2].second, (Bytes{1, 12, 2, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0})) << "IOAPIC, ID after the CPUs";
  EXPECT_EQ(items[3].second, (Bytes{2, 10, 0, 0, 2, 0, 0, 0, 0, 0})) << "ISA IRQ 0 -> GSI 2, conforming";
  EXPECT_EQ(items[4].second, (Bytes{2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0})) << "SCI: level, active high";
  EXPECT_EQ(items[5].second, (Bytes{4, 6, 0xFF, 0, 0, 1})) << "LINT1 is NMI on every CPU";
}

/// A minimal AML reader: enough to walk Name/Scope/Device terms and read a package.
class AmlReader {
 public:
  explicit AmlReader(const Bytes& aml) : aml_(aml) {}
  size_t pkg_length(size_t* at) const {
    const uint8_t lead = aml_[*at];
    const unsigned follow = lead >> 6;
    size_t length = follow == 0 ? lead & 0x3Fu : lead & 0x0Fu;
    for (unsigned i = 0; i < follow; ++i) length |= size_t{aml_[*at + 1 + i]} << (4 + 8 * i);
    *at += 1 + follow;
    return length;
  }
  uint32_t integer(size_t* at) const {
    const uint8_t op = aml_[(*at)++];
    switch (op) {
      case 0x00: return 0;
      case 0x01: return 1;
      case 0xFF: return 0xFFFFFFFF;
      case 0x0A: *at += 1; return le(aml_, *at - 1, 1);
      case 0x0B: *at += 2; return le(aml_, *at - 2, 2);
      case 0x0C: *at += 4; return le(aml_, *at - 4, 4);
      default: ADD_FAILURE() << "not an integer opcode " << int{op}; return 0;
    }
  }

 private:
  const Bytes& aml_;
};

TEST(AcpiTables, DsdtS5IsSoftOffPackage) {
  const Bytes aml = build_dsdt_aml(PlatformTablesConfig{});
  // Name(\_S5_, Package(4) {0, 0, 0, 0}) comes first.
  ASSERT_GE(aml.size(), 7u);
  EXPECT_EQ(aml[0], 0x08) << "NameOp";
  EXPECT_EQ(aml[1], '\\');
  EXPECT_EQ(text(aml, 2, 4), "_S5_");
  size_t at = 6;
  ASSERT_EQ(aml[at++], 0x12) << "PackageOp";
  const size_t start = at;
  const size_t length = AmlReader(aml).pkg_length(&at);
  const size_t end = start + length;
  ASSERT_EQ(aml[at++], 4) << "NumElements";
  const AmlReader reader(aml);
  EXPECT_EQ(reader.integer(&at), 0u) << "SLP_TYPa: the PIIX4's soft-off SUS_TYP";
  EXPECT_EQ(reader.integer(&at), 0u) << "SLP_TYPb";
  EXPECT_EQ(reader.integer(&at), 0u);
  EXPECT_EQ(reader.integer(&at), 0u);
  EXPECT_EQ(at, end);
}

/// The byte offset of a name segment `seg` after a DeviceOp, or npos.
size_t find_device(const Bytes& aml, std::string_view seg) {
  for (size_t i = 0; i + 6 < aml.size(); ++i) {
    if (aml[i] == 0x5B && aml[i + 1] == 0x82) {
      size_t at = i + 2;
      (void)AmlReader(aml).pkg_length(&at);
      if (text(aml, at, 4) == seg) return i;
    }
  }
  return std::string::npos;
}

TEST(AcpiTables, DsdtHasThePciRootOnlyWithPci) {
  PlatformTablesConfig config;
  EXPECT_EQ(find_device(build_dsdt_aml(config), "PCI0"), std::string::npos);
  EXPECT_NE(find_device(build_dsdt_aml(config), "COM1"), std::string::npos);
  EXPECT_EQ(find_device(build_dsdt_aml(config), "FDC0"), std::string::npos);
  config.pci = true;
  config.floppy = true;
  const Bytes aml = build_dsdt_aml(config);
  const size_t pci = find_device(aml, "PCI0");
  ASSERT_NE(pci, std::string::npos);
  EXPECT_NE(find_device(aml, "ISA_"), std::string::npos);
  EXPECT_NE(find_device(aml, "FDC0"), std::string::npos);
  // _HID EisaId("PNP0A03") follows the device's name.
  const Bytes hid{0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03};
  EXPECT_NE(std::search(aml.begin() + static_cast<ptrdiff_t>(pci), aml.end(), hid.begin(), hid.end()), aml.end());
}

TEST(AcpiTables, LoaderScriptRunAsSeaBiosRunsItGivesTheLinkedBytes) {
  PlatformTablesConfig config;
  config.apic = true;
  config.pci = true;
  const LinkedTables tables = build_acpi_tables(config);
  auto script = tables.loader_script();
  ASSERT_TRUE(script);
  ASSERT_EQ(script->size() % table_loader::kCommandSize, 0u);
  // SeaBIOS's romfile_loader_execute, over files named as in fw_cfg.
  std::map<std::string, Bytes> loaded;
  std::map<std::string, uint32_t> placed;
  uint32_t next_high = 0x0FFE0000;
  for (size_t at = 0; at < script->size(); at += table_loader::kCommandSize) {
    const uint8_t* c = script->data() + at;
    const auto name_at = [&](size_t off) { return std::string(reinterpret_cast<const char*>(c + off)); };
    const uint32_t command = le(*script, at, 4);
    if (command == table_loader::kAllocate) {
      const std::string name = name_at(4);
      const uint32_t align = le(*script, at + 60, 4);
      ASSERT_EQ(align & (align - 1), 0u);
      const size_t file = tables.find(name);
      ASSERT_LT(file, tables.files.size()) << name;
      loaded[name] = tables.files[file].bytes;
      const uint8_t zone = c[64];
      ASSERT_TRUE(zone == 1 || zone == 2);
      placed[name] = zone == 2 ? 0xF5A00 : (next_high += 0x1000) & ~(align - 1);
    } else if (command == table_loader::kAddPointer) {
      Bytes& dest = loaded.at(name_at(4));
      const uint32_t offset = le(*script, at + 116, 4);
      const uint8_t size = c[120];
      ASSERT_EQ(size, 4);
      const uint32_t value = le(dest, offset, 4) + placed.at(name_at(60));
      std::memcpy(dest.data() + offset, &value, 4);
    } else if (command == table_loader::kAddChecksum) {
      Bytes& file = loaded.at(name_at(4));
      const uint32_t offset = le(*script, at + 60, 4), start = le(*script, at + 64, 4), len = le(*script, at + 68, 4);
      ASSERT_LE(start + len, file.size());
      file[offset] = static_cast<uint8_t>(file[offset] - sum(file, start, len));
    } else {
      FAIL() << "unexpected command " << command;
    }
  }
  std::vector<uint32_t> addresses;
  for (const TableFile& file : tables.files) addresses.push_back(placed.at(file.name));
  const auto linked = tables.link(addresses);
  for (size_t i = 0; i < tables.files.size(); ++i) EXPECT_EQ(loaded.at(tables.files[i].name), linked[i]);
  EXPECT_EQ(tables.files[tables.find(acpi::kRsdpFile)].zone, TableZone::FSeg);
}

TEST(Aml, PkgLengthEncodings) {
  EXPECT_EQ(aml::pkg_length(0), (Bytes{0x01}));
  EXPECT_EQ(aml::pkg_length(62), (Bytes{0x3F}));
  // 63 body bytes + 2 length bytes = 65 = 0x41: lead 0x41 (one follow byte, nibble 1), 0x04.
  EXPECT_EQ(aml::pkg_length(63), (Bytes{0x41, 0x04}));
  EXPECT_EQ(aml::pkg_length(0xFFD), (Bytes{0x4F, 0xFF}));
  EXPECT_EQ(aml::pkg_length(0xFFE), (Bytes{0x81, 0x00, 0x01}));
}

TEST(Aml, NameStrings) {
  EXPECT_EQ(aml::name_string("_S5"), (Bytes{'_', 'S', '5', '_'}));
  EXPECT_EQ(aml::name_string("\\_SB.PCI0"), (Bytes{'\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
  EXPECT_EQ(aml::name_string("\\A.B.C"),
            (Bytes{'\\', 0x2F, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
  EXPECT_EQ(aml::name_string("^ISA"), (Bytes{'^', 'I', 'S', 'A', '_'}));
}

TEST(Aml, IntegersAndEisaIds) {
  EXPECT_EQ(aml::integer(0), (Bytes{0x00}));
  EXPECT_EQ(aml::integer(1), (Bytes{0x01}));
  EXPECT_EQ(aml::integer(0x10), (Bytes{0x0A, 0x10}));
  EXPECT_EQ(aml::integer(0x1234), (Bytes{0x0B, 0x34, 0x12}));
  EXPECT_EQ(aml::integer(0x00010000), (Bytes{0x0C, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(aml::eisa_id("PNP0A03"), (Bytes{0x0C, 0x41, 0xD0, 0x0A, 0x03}));
  EXPECT_EQ(aml::eisa_id("PNP0501"), (Bytes{0x0C, 0x41, 0xD0, 0x05, 0x01}));
}

TEST(Aml, ResourceTemplateEndsWithEndTag) {
  const Bytes crs = aml::ResourceTemplate().io(0x3F8, 0x3F8, 0, 8).irq(4).finish();
  // Buffer(PkgLength, BufferSize 0x0D) {IO 8 bytes, IRQ 3 bytes, End 2 bytes}
  EXPECT_EQ(crs, (Bytes{0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x00, 0x08, 0x22, 0x10, 0x00, 0x79,
                        0x00}));
}

}  // namespace
}  // namespace vmm86
