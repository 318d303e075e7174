// The PC's fw_cfg items as SeaBIOS reads them: etc/e820 as 20-byte packed
// {le64 address, le64 length, le32 type} records (struct e820_reservation in a 32-bit
// build), number files whose size is their width (romfile_loadint), bootorder as text.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/firmware/fw_cfg.h"
#include "devices/firmware/fw_cfg_pc.h"
#include "fw_cfg_test_util.h"

namespace vmm86 {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint64_t kMiB = 1024 * 1024;

class FwCfgPcTest : public ::testing::Test {
 protected:
  FwCfgPcTest() : memory(0x10000), fw_cfg(&memory), guest(fw_cfg) {}

  Bytes read_file(const std::string& name) {
    const auto file = guest.find_file(name);
    if (file.select == 0) return {};
    return guest.read_item(file.select, file.size);
  }

  test::FlatMemory memory;
  FwCfg fw_cfg;
  test::FwCfgGuest guest;
};

TEST_F(FwCfgPcTest, E820FileIsPackedLittleEndianRecords) {
  FwCfgMachineInfo info;
  info.ram_bytes = 64 * kMiB;
  info.e820 = {{0, 0x9FC00, kE820Ram}, {0x100000, 63 * kMiB, kE820Ram}, {0xFFFC0000, 0x40000, kE820Reserved}};
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, info));
  // clang-format off
  const Bytes expected = {
      0, 0, 0, 0, 0, 0, 0, 0,              0x00, 0xFC, 0x09, 0, 0, 0, 0, 0,  1, 0, 0, 0,
      0x00, 0x00, 0x10, 0, 0, 0, 0, 0,     0x00, 0x00, 0xF0, 0x03, 0, 0, 0, 0,  1, 0, 0, 0,
      0x00, 0x00, 0xFC, 0xFF, 0, 0, 0, 0,  0x00, 0x00, 0x04, 0, 0, 0, 0, 0,  2, 0, 0, 0,
  };
  // clang-format on
  EXPECT_EQ(read_file("etc/e820"), expected);
}

TEST_F(FwCfgPcTest, E820DefaultsToQemusSplitForTheRamSize) {
  FwCfgMachineInfo info;
  info.ram_bytes = 128 * kMiB;
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, info));
  EXPECT_EQ(read_file("etc/e820"), (Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 1, 0, 0, 0}));

  const auto split = pc_e820_for_ram(4096 * kMiB);
  ASSERT_EQ(split.size(), 2u);
  EXPECT_EQ(split[0].address, 0u);
  EXPECT_EQ(split[0].length, 0xC0000000u);
  EXPECT_EQ(split[1].address, 0x100000000u);
  EXPECT_EQ(split[1].length, 0x40000000u);
  EXPECT_EQ(pc_e820_for_ram(0xDFF00000).size(), 1u);  // under 3.5 GiB stays whole
}

TEST_F(FwCfgPcTest, SerconPortIsA16BitNumberFile) {
  FwCfgMachineInfo info;
  info.ram_bytes = 16 * kMiB;
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, info));
  EXPECT_EQ(read_file("etc/sercon-port"), (Bytes{0xF8, 0x03}));  // size 2: romfile_loadint reads le16
}

TEST_F(FwCfgPcTest, SerconPortZeroLeavesTheFileOut) {
  FwCfgMachineInfo info;
  info.serial_console_port = 0;
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, info));
  EXPECT_EQ(guest.find_file("etc/sercon-port").select, 0);
}

TEST_F(FwCfgPcTest, BootFailWaitIsLe32Milliseconds) {
  FwCfgMachineInfo info;
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, info));
  EXPECT_EQ(read_file("etc/boot-fail-wait"), (Bytes{0xFF, 0xFF, 0xFF, 0xFF}));  // never retry
}

TEST_F(FwCfgPcTest, BootOrderIsTheTextWithItsNul) {
  FwCfgMachineInfo info;
  info.boot_order = "/pci@i0cf8/ide@1,1/drive@0/disk@0\n/rom@genroms/x.bin";
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, info));
  std::string expected = info.boot_order;
  expected.push_back('\0');
  EXPECT_EQ(read_file("bootorder"), Bytes(expected.begin(), expected.end()));
}

TEST_F(FwCfgPcTest, NoBootOrderNoFile) {
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, FwCfgMachineInfo{}));
  EXPECT_EQ(guest.find_file("bootorder").select, 0);
}

TEST_F(FwCfgPcTest, NumberedItems) {
  FwCfgMachineInfo info;
  info.ram_bytes = 0x12345678;
  info.cpu_count = 2;
  info.show_boot_menu = true;
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, info));
  EXPECT_EQ(guest.read_item(0x0003, 8), (Bytes{0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0}));  // RAM_SIZE le64
  EXPECT_EQ(guest.read_item(0x0005, 3), (Bytes{2, 0, 0}));                             // NB_CPUS le16
  EXPECT_EQ(guest.read_item(0x000F, 3), (Bytes{2, 0, 0}));                             // MAX_CPUS le16
  EXPECT_EQ(guest.read_item(0x000E, 3), (Bytes{1, 0, 0}));                             // BOOT_MENU le16
  // NUMA: le64 node count 0, then one le64 per CPU.
  EXPECT_EQ(fw_cfg.item(0x000D)->size(), 24u);
  EXPECT_EQ(guest.read_item(0x000D, 25), Bytes(25, 0));
}

TEST_F(FwCfgPcTest, FillingTwiceFails) {
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, FwCfgMachineInfo{}));
  EXPECT_FALSE(fill_pc_fw_cfg(fw_cfg, FwCfgMachineInfo{}));
}

TEST_F(FwCfgPcTest, SeaBiosDmaWalkFindsTheE820File) {
  // qemu_early_e820: select+read the directory count, then read 64-byte entries in turn.
  FwCfgMachineInfo info;
  info.ram_bytes = 32 * kMiB;
  info.boot_order = "/x";
  ASSERT_TRUE(fill_pc_fw_cfg(fw_cfg, info));
  auto dma = [&](uint32_t control, uint32_t length, uint64_t address) {
    memory.put_be32(0x100, control);
    memory.put_be32(0x104, length);
    memory.put_be64(0x108, address);
    guest.start_dma(0x100);
    return memory.be32(0x100);
  };
  ASSERT_EQ(dma(0x0019u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead, 4, 0x200), 0u);
  const uint32_t count = memory.be32(0x200);
  EXPECT_EQ(count, 4u);  // bootorder, etc/boot-fail-wait, etc/e820, etc/sercon-port
  uint16_t select = 0;
  uint32_t size = 0;
  for (uint32_t i = 0; i < count; ++i) {
    ASSERT_EQ(dma(FwCfg::kDmaRead, 64, 0x300), 0u);
    if (std::string(reinterpret_cast<const char*>(&memory.bytes[0x308])) != "etc/e820") continue;
    size = memory.be32(0x300);
    select = static_cast<uint16_t>(memory.bytes[0x304] << 8 | memory.bytes[0x305]);
    break;
  }
  ASSERT_EQ(size, 20u);
  ASSERT_EQ(dma(uint32_t{select} << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead, size, 0x400), 0u);
  EXPECT_EQ(memory.range(0x400, 20), (Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 1, 0, 0, 0}));
}

}  // namespace
}  // namespace vmm86
